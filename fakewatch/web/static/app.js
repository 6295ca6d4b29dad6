// fakewatch console: drag and drop, verdict cards that update themselves, lazy counts, confirmations.
"use strict";
(function () {

  // drag and drop onto the upload area: the dropped files go into the file input and the form is sent
  const drop = document.querySelector(".drop");
  const input = document.getElementById("files");
  if (drop && input) {
    ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
      event.preventDefault(); drop.classList.add("over");
    }));
    ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("over")));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        document.getElementById("upload").requestSubmit();
      }
    });
    // more files than one check takes: say so at once instead of sending them all to be refused
    const most = Number(input.dataset.maxFiles || 0);
    const tooMany = () => (most && input.files.length > most
      ? `${input.files.length} files chosen; at most ${most} are checked at once: check them in batches` : "");
    input.addEventListener("change", () => input.setCustomValidity(tooMany()));
    document.getElementById("upload").addEventListener("submit", (event) => {
      input.setCustomValidity(tooMany());
      if (tooMany()) { event.preventDefault(); input.reportValidity(); }
    });
  }

  // distributed mode: pending cards poll their image until a worker has written the verdict
  function poll(card) {
    const id = card.dataset.pending;
    fetch(`/api/v1/images/${id}`, { credentials: "same-origin" }).then((response) => {
      if (response.status === 401 || response.status === 429) throw new Error("signed out");  // stop polling
      return response.json();
    }).then((row) => {
      if (row.status === "pending") { setTimeout(() => poll(card), 1000); return; }
      const unjudged = row.reason === "out_of_domain";
      const name = card.querySelector(".name").textContent;
      const label = card.querySelector(".label");
      label.textContent = unjudged ? "not judged" : row.label || row.error_kind || row.status;
      label.className = `label label-${unjudged ? "unjudged" : row.label || "error"}`;
      card.className = `card verdict-${unjudged ? "unjudged" : row.label || row.status}`;
      const body = card.querySelector(".body");
      body.replaceChildren();
      const line = document.createElement("p");
      line.className = "reason";
      if (unjudged) {
        line.textContent = `Not judged: no active classifier covers this size. ${row.reason_detail || ""}`;
      } else {
        line.textContent = row.label
          ? `p(fake) ${row.p_fake.toFixed(3)} (threshold ${row.threshold.toFixed(2)}), confidence ${row.confidence.toFixed(2)}; classifier ${row.classifier}`
          : `${name}: ${row.error || row.status}`;
      }
      body.appendChild(line);
      if (row.label && !unjudged) {
        const meter = document.createElement("meter");
        Object.assign(meter, { min: 0, max: 1, low: row.threshold, high: row.threshold, optimum: 0, value: row.p_fake });
        body.prepend(meter);
      }
      delete card.dataset.pending;
    }).catch(() => setTimeout(() => poll(card), 3000));
  }
  document.querySelectorAll("[data-pending]").forEach(poll);

  // results: counts per label for the current filter, fetched after the page is shown
  const counts = document.getElementById("counts");
  if (counts) {
    fetch(counts.dataset.url, { credentials: "same-origin" }).then((response) => response.json()).then((data) => {
      counts.replaceChildren();
      const total = Object.values(data).reduce((sum, value) => sum + value, 0);
      const entries = [["all", total], ...Object.entries(data).sort((a, b) => b[1] - a[1])];
      for (const [label, value] of entries) {
        const item = document.createElement("span");
        item.className = "count";
        const badge = document.createElement("span");
        badge.className = label === "all" ? "muted" : `label label-${label}`;
        badge.textContent = label;
        item.append(badge, ` ${value.toLocaleString()}`);
        counts.appendChild(item);
      }
    }).catch(() => { counts.textContent = ""; });
  }

  // a picture smaller than its frame is enlarged with visible pixels, not smoothed: this is forensics
  document.querySelectorAll(".picture img").forEach((image) => {
    const mark = () => image.classList.toggle("upscaled", image.naturalWidth < image.clientWidth);
    if (image.complete) mark(); else image.addEventListener("load", mark);
  });

  // the image page's heatmap toggle swaps the picture for the occlusion heatmap drawn over it
  const toggle = document.getElementById("heatmap-toggle");
  const picture = document.getElementById("picture");
  if (toggle && picture) {
    toggle.addEventListener("change", () => {
      picture.src = toggle.checked ? picture.dataset.heatmap : picture.dataset.preview;
    });
    // no heatmap to be had (the file is gone, say): back to the picture, and say so instead of a broken image
    picture.addEventListener("error", () => {
      if (!toggle.checked) return;
      toggle.checked = false;
      toggle.disabled = true;
      picture.src = picture.dataset.preview;
      toggle.parentElement.append(" (no heatmap can be drawn for this image)");
    });
  }

  // forms that change state ask first
  document.querySelectorAll("form[data-confirm]").forEach((form) => form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); return; }
    form.querySelector('input[name="confirm"]').value = "yes";
  }));
})();
