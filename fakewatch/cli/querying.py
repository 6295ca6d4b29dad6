"""Commands that read and annotate results: `results`, `rescan`, `label`, `show` and `stats`."""

from __future__ import annotations

import getpass
import itertools
import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click

from fakewatch.cli.base import cli, command_settings, find_image, format_option, open_database, open_mode
from fakewatch.cli.summaries import record_lines
from fakewatch.errors import FilterError
from fakewatch.filters import ResultFilter
from fakewatch.names import csv_cell, shown
from fakewatch.values import RESULT_COLUMNS, AnalystLabel, EvidenceKind, Reason, Status, VerdictLabel, choices

# --- querying ---------------------------------------------------------------------------------------


def _result_filters(command: Callable[..., Any]) -> Callable[..., Any]:
    """The filter options shared by `results` and `rescan`; they arrive as one ``filters`` argument."""
    options = [
        click.option("--label", type=click.Choice(choices(VerdictLabel)), help="Only this verdict label."),
        click.option("--min-confidence", type=click.FloatRange(0.5, 1.0),
                     help="Only verdicts at least this confident (0.5-1)."),
        click.option("--since", help="Only verdicts since an ISO time or an age (30m, 2h, 7d)."),
        click.option("--path", "path_glob", help="Only paths matching this glob (* matches across folders)."),
        click.option("--classifier", "classifier_version", help="Verdicts of this classifier version "
                                                                "(default: each image's latest)."),
        click.option("--status", type=click.Choice(choices(Status)),
                     help="Only images in this state."),
        click.option("--disagreements", is_flag=True, help="Only images whose verdict contradicts an analyst label."),
        click.option("--changed", is_flag=True, help="Only images whose latest verdict changed label from the "
                                                     "one before (e.g. after a re-scan)."),
        click.option("--reason", type=click.Choice(choices(Reason)),
                     help="Only verdicts decided by proof in the file (provenance), by the classifier, or given "
                          "because no classifier covers the image (out_of_domain)."),
        click.option("--evidence", "evidence_kind", type=click.Choice(choices(EvidenceKind)), metavar="KIND",
                     help=f"Only images with evidence of this kind ({', '.join(choices(EvidenceKind))})."),
        click.option("--include-deleted", is_flag=True, help="Include files that have since been deleted."),
        click.option("--limit", type=int, help="At most this many rows (1 or more)."),
        click.option("--after", type=int, metavar="ID", help="Only rows listed after image ID (the next page: "
                                                           "pass the last ID of the previous page)."),
    ]

    @wraps(command)
    def wrapper(*args: Any, label: str | None, min_confidence: float | None, since: str | None,
                path_glob: str | None, classifier_version: str | None, status: str | None, disagreements: bool,
                changed: bool, reason: str | None, evidence_kind: str | None, include_deleted: bool,
                limit: int | None, after: int | None, **kwargs: Any) -> Any:
        try:
            filters = ResultFilter.parse(label=label, min_confidence=min_confidence, since=since, path=path_glob,
                                         classifier=classifier_version, status=status, disagreements=disagreements,
                                         changed=changed, include_deleted=include_deleted, limit=limit,
                                         after=after, reason=reason, evidence=evidence_kind)
        except FilterError as exc:
            raise click.UsageError(str(exc)) from exc
        return command(*args, filters=filters, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@cli.command()
@_result_filters
@format_option(("table", "csv", "json", "paths"), "table")
@click.pass_context
def results(ctx: click.Context, filters: ResultFilter, output_format: str) -> None:
    """List images and their latest verdicts, newest first.

    \b
    Examples:
      fakewatch results --label fake --min-confidence 0.9
      fakewatch results --since 1d --format csv > today.csv
      fakewatch results --label fake --format paths | xargs -d '\\n' ls -l
      fakewatch results --changed          # label changed by the latest re-scan
    """
    from fakewatch.db.results import results as matching

    settings = command_settings(ctx)
    with open_database(settings).session() as session:
        _print_results(matching(session, filters), output_format)


@cli.command()
@_result_filters
@click.option("--domain", help="Only images judged by a classifier of this domain (thumbnail, photo, ...).")
@click.pass_context
def rescan(ctx: click.Context, filters: ResultFilter, domain: str | None) -> None:
    """Classify existing images again with the active classifiers (all, or filtered like `results`).

    Each image goes to the active classifier whose domain covers it. Earlier verdicts are kept as history;
    `fakewatch results --changed` lists images whose label changed. `--domain photo` re-classifies what
    the photo classifiers judged (after activating a new one, say); `--reason out_of_domain` picks the
    images no classifier covered. In distributed mode the work goes through the queue.
    """
    import dataclasses

    from fakewatch.db.recording import mark_pending
    from fakewatch.db.results import image_ids
    from fakewatch.registry import Registry

    settings = command_settings(ctx)
    with open_mode(settings) as mode:
        with mode.database.session() as session:
            if domain is None:
                ids = image_ids(session, filters)
            else:
                versions = [v.version for v in Registry(settings).versions() if v.domain.name == domain]
                ids = sorted({image_id for version in versions for image_id in
                              image_ids(session, dataclasses.replace(filters, classifier=version))})
        with mode.database.session() as session, session.begin():
            mark_pending(session, ids)
        for start in range(0, len(ids), settings.batch_size):
            mode.dispatcher.submit(ids[start:start + settings.batch_size])
    where = "classified" if settings.embedded else "queued for workers"
    click.echo(f"{len(ids):,} images {where} with the active classifiers")


@cli.command("label")
@click.argument("reference")
@click.option("--fake", is_flag=True, help="The analyst judges the image AI-generated.")
@click.option("--real", is_flag=True, help="The analyst judges the image authentic.")
@click.option("--note", help="Free text kept with the label.")
@click.option("--author", default=lambda: getpass.getuser(), show_default="your user name",
              help="Who made the judgement.")
@click.pass_context
def label_command(ctx: click.Context, reference: str, fake: bool, real: bool, note: str | None, author: str) -> None:
    """Record an analyst's judgement on an image (by path or id): --fake or --real."""
    from fakewatch.db.labels import add_label

    if fake == real:
        raise click.UsageError("say --fake or --real (one of them)" if not fake else
                               "--fake and --real cannot go together: say one")
    verdict = AnalystLabel.FAKE if fake else AnalystLabel.REAL
    settings = command_settings(ctx)
    with open_database(settings).session() as session, session.begin():
        image = find_image(session, reference)
        add_label(session, image, verdict, author, note)
        click.echo(f"labelled {shown(image.path)} as {verdict} ({author})")


def _print_results(rows: Any, output_format: str) -> None:
    if output_format == "json":
        for row in rows:
            click.echo(json.dumps(row, sort_keys=True))
    elif output_format == "paths":
        for row in rows:
            click.echo(shown(row["path"]))
    elif output_format == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=RESULT_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            cells = {**row, "evidence": "; ".join(f"{item['strength']}: {item['summary']}" for item in row["evidence"])}
            writer.writerow({key: csv_cell(value) for key, value in cells.items()})
    else:
        _print_table(rows)


TABLE_SAMPLE = 1000  # rows read before the table's column widths are fixed


def _print_table(rows: Any) -> None:
    """The `results` table. Column widths fit the widest value in the listing (in its first
    ``TABLE_SAMPLE`` rows, so that a long listing still streams)."""
    rows = iter(rows)
    sample = list(itertools.islice(rows, TABLE_SAMPLE))
    id_width = max([7, *(len(str(row["id"])) for row in sample)])
    classifier_width = max([10, *(len(shown(row["classifier"] or "-")) for row in sample)])
    click.echo(f"{'ID':>{id_width}}  {'LABEL':<9} {'P_FAKE':>6} {'CONF':>5}  {'STATUS':<7} "
               f"{'CLASSIFIER':<{classifier_width}} PATH")
    for row in itertools.chain(sample, rows):
        p_fake = f"{row['p_fake']:.3f}" if row["p_fake"] is not None else "-"
        confidence = f"{row['confidence']:.2f}" if row["confidence"] is not None else "-"
        detail = f"  [{row['error_kind']}: {shown(row['error'])}]" if row["status"] == Status.ERROR else ""
        if row["reason"] == Reason.PROVENANCE:
            detail = f"  [provenance: {shown(row['reason_detail'])}]"
        elif row["reason"] == Reason.OUT_OF_DOMAIN:
            detail = f"  [out_of_domain: {shown(row['reason_detail'])}]"
        click.echo(f"{row['id']:>{id_width}}  {row['label'] or '-':<9} {p_fake:>6} {confidence:>5}  "
                   f"{row['status']:<7} {shown(row['classifier'] or '-'):<{classifier_width}} "
                   f"{shown(row['path'])}{detail}")


@cli.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="Print the whole record as JSON.")
@click.pass_context
def show(ctx: click.Context, reference: str, as_json: bool) -> None:
    """Full record of one image (by path or id): verdict history, other paths with the same content, labels."""
    from fakewatch.db.results import image_record

    settings = command_settings(ctx)
    with open_database(settings).session() as session:
        image = find_image(session, reference)
        record = image_record(session, image)
    if as_json:
        click.echo(json.dumps(record, indent=2, sort_keys=True))
    else:
        for line in record_lines(record):
            click.echo(line)


@cli.command()
@format_option(("text", "json"), "text")
@click.pass_context
def stats(ctx: click.Context, output_format: str) -> None:
    """Counts by status, verdict label, error kind and classifier version."""
    from fakewatch.db.results import stats as counts

    settings = command_settings(ctx)
    with open_database(settings).session() as session:
        numbers = counts(session)
    if output_format == "json":
        click.echo(json.dumps(numbers, indent=2, sort_keys=True))
        return
    click.echo(f"images: {numbers['images']:,} ({numbers['contents']:,} distinct contents, "
               f"{numbers['deleted']:,} deleted)")
    for title, key in (("status", "by_status"), ("latest verdicts", "by_label"), ("errors", "by_error_kind"),
                       ("verdicts by classifier", "verdicts_by_classifier")):
        items = ", ".join(f"{name}: {count:,}" for name, count in sorted(numbers[key].items(), key=str))
        click.echo(f"{title}: {items or '-'}")


@cli.command("explain")
@click.argument("reference")
@click.option("--out", type=click.Path(dir_okay=False), help="PNG to write (default: NAME.heatmap.png here).")
@click.pass_context
def explain_command(ctx: click.Context, reference: str, out: str | None) -> None:
    """Draw where the classifier looked: an occlusion heatmap over the image (by path or id), for the
    classifier version that gave its latest verdict."""
    from pathlib import Path

    from fakewatch.classify.heatmap import heatmap_for

    settings = command_settings(ctx)
    with open_database(settings).session() as session:
        image = find_image(session, reference)
        image_id = image.id
    png, explanation, version, path = heatmap_for(settings, open_database(settings), image_id)
    target = Path(out) if out else Path(f"{Path(path).stem}.heatmap.png")
    target.write_bytes(png)
    row, column = explanation.hottest
    click.echo(f"wrote {shown(str(target))}: p_fake {explanation.p_fake:.3f} from {version}; hiding the "
               f"{explanation.patch}x{explanation.patch} square at row {row}, column {column} of its "
               f"{explanation.heat.shape[0]}x{explanation.heat.shape[1]} input lowers it the most")
