"""Turning recorded images into verdicts, in both modes.

    runtime    read pending rows, decode each content once, classify in batches, judge, write verdicts
    router     each decoded image to the active classifier whose domain covers it
    heatmap    the occlusion heatmap of a recorded image, for the classifier of its latest verdict

Celery workers (:mod:`fakewatch.worker`) run the same :class:`~fakewatch.classify.runtime.Runtime`.
"""
