// Voxhelm console: live job progress, a busy note while a form waits, staging a file too
// large for the form (with an upload progress bar), and the transcript player (sentences seek
// the audio, as does a #t=<seconds> in the address; the playing one is marked with
// aria-current).
"use strict";

// Re-fetch a server-rendered fragment while its data-live is "true", keeping focus.
function pollRegion(region) {
  const tick = async () => {
    if (region.dataset.live !== "true") return;
    try {
      const response = await fetch(region.dataset.pollUrl, { credentials: "same-origin" });
      if (response.ok) {
        const template = document.createElement("template");
        template.innerHTML = (await response.text()).trim();
        const fresh = template.content.firstElementChild;
        if (region.dataset.reloadWhenDone === "true" && fresh.dataset.live !== "true") {
          window.location.reload();
          return;
        }
        if (fresh.outerHTML !== region.outerHTML) {
          const focused = region.contains(document.activeElement) ? document.activeElement.id : "";
          region.replaceWith(fresh);
          region = fresh;
          if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        }
      }
    } catch (error) {
      // The server restarting is no reason to stop; try again at the next tick.
    }
    window.setTimeout(tick, 1500);
  };
  window.setTimeout(tick, 1500);
}

function markSentence(sentences, current) {
  for (const sentence of sentences) {
    if (sentence === current) sentence.setAttribute("aria-current", "true");
    else sentence.removeAttribute("aria-current");
  }
}

// The sentence being spoken at `time`: the last one that starts by then.
function sentenceAt(sentences, starts, time) {
  let found = null;
  for (let index = 0; index < starts.length && starts[index] <= time + 0.001; index++) {
    found = sentences[index];
  }
  return found;
}

// Media-fragment time (#t=12.3, as search hits and sentence links carry it), or null.
function fragmentTime(hash) {
  const match = /^#t=(\d+(?:\.\d+)?)$/.exec(hash);
  return match ? parseFloat(match[1]) : null;
}

function wirePlayer(player) {
  const sentences = Array.from(document.querySelectorAll("a.sentence"));
  const starts = sentences.map((sentence) => parseFloat(sentence.dataset.start));
  const seek = (time, play) => {
    const go = () => {
      player.currentTime = time;
      if (play) player.play().catch(() => {});
    };
    // Before the metadata has loaded, the element cannot seek yet.
    if (player.readyState >= 1) go();
    else player.addEventListener("loadedmetadata", go, { once: true });
    const current = sentenceAt(sentences, starts, time);
    if (current) markSentence(sentences, current);
    return current;
  };
  for (const sentence of sentences) {
    // A link (Enter activates it): the address keeps the position, the click plays from it.
    sentence.addEventListener("click", (event) => {
      event.preventDefault();
      window.history.replaceState(null, "", sentence.getAttribute("href"));
      seek(parseFloat(sentence.dataset.start), true);
    });
  }
  player.addEventListener("timeupdate", () => {
    const current = sentenceAt(sentences, starts, player.currentTime);
    if (current && current.getAttribute("aria-current") !== "true") markSentence(sentences, current);
  });
  // Opened at a moment (a search hit): start there, and show that sentence. Browsers may
  // refuse to play before the user has interacted with the page; the position is kept.
  const open = () => {
    const time = fragmentTime(window.location.hash);
    if (time === null) return;
    const current = seek(time, true);
    if (current) current.scrollIntoView({ block: "center" });
  };
  window.addEventListener("hashchange", open);
  open();
}

// Sizes as the server writes them (voxhelm.units.human_bytes): "57.2 MiB", "512 MiB".
function humanBytes(count) {
  for (const [size, unit] of [[1024 ** 3, "GiB"], [1024 ** 2, "MiB"], [1024, "KiB"]]) {
    if (count >= size) return `${Math.round((count / size) * 10) / 10} ${unit}`;
  }
  return count === 1 ? "1 byte" : `${count} bytes`;
}

function markBusy(form, text) {
  const button = form.querySelector("button[type=submit]");
  button.setAttribute("aria-disabled", "true");
  button.classList.add("is-busy");
  document.getElementById("submit-status").textContent = text;
}

function markIdle(form) {
  const button = form.querySelector("button[type=submit]");
  button.removeAttribute("aria-disabled");
  button.classList.remove("is-busy");
  document.getElementById("submit-status").textContent = "";
}

// A file over the form's cap is staged first (POST /uploads, the path and caps of
// /v1/uploads) with a progress bar; the form then names the staged file and is sent
// without it, and the server makes a batch job. Smaller files go with the form, as
// without JavaScript.
function wireStaging(form) {
  const input = document.getElementById("id_audio_file");
  const staged = form.querySelector("input[name=staged_upload]");
  const panel = document.getElementById("upload-progress");
  const bar = document.getElementById("upload-bar");
  const percent = document.getElementById("upload-percent");
  const problem = document.getElementById("upload-error");
  const formCap = Number(form.dataset.formCap);
  const stagedCap = Number(form.dataset.stagedCap);
  let request = null;

  const showProblem = (message) => {
    problem.textContent = message;
    problem.hidden = false;
    panel.hidden = true;
    markIdle(form);
  };
  const showProgress = (fraction) => {
    const value = Math.floor(fraction * 100);
    bar.value = value;
    bar.textContent = `${value}%`;
    percent.textContent = `${value}%`;
  };

  input.addEventListener("change", () => {
    staged.value = ""; // a new choice replaces a file staged before
    problem.hidden = true;
    const note = document.getElementById("staged-note");
    if (note) note.hidden = true;
  });
  document.getElementById("upload-cancel").addEventListener("click", () => {
    if (request) request.abort();
  });

  form.addEventListener("submit", (event) => {
    const file = input.files[0];
    if (request) {
      event.preventDefault(); // an upload is running
      return;
    }
    if (!file || file.size <= formCap) {
      markBusy(form, form.dataset.busyText);
      return;
    }
    event.preventDefault();
    problem.hidden = true;
    if (file.size > stagedCap) {
      showProblem(`${file.name} is ${humanBytes(file.size)}; the console takes files up to ` +
        `${form.dataset.stagedCapText}.`);
      return;
    }
    document.getElementById("upload-label").textContent = `Uploading ${file.name}`;
    showProgress(0);
    panel.hidden = false;
    markBusy(form, `Uploading ${file.name} (${humanBytes(file.size)})…`);

    const body = new FormData();
    body.append("file", file, file.name);
    request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadUrl);
    request.responseType = "json";
    request.setRequestHeader("Accept", "application/json");
    request.setRequestHeader("X-CSRFToken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    request.upload.addEventListener("progress", (progress) => {
      if (progress.lengthComputable) showProgress(progress.loaded / progress.total);
    });
    request.upload.addEventListener("load", () => {
      showProgress(1);
      document.getElementById("submit-status").textContent = `${file.name} is uploaded; storing it…`;
    });
    request.addEventListener("load", () => {
      const answer = request.response;
      const status = request.status;
      request = null;
      if (status === 201 && answer && answer.id) {
        staged.value = answer.id;
        input.disabled = true; // the file is on the server; the form goes without it
        markBusy(form, "Uploaded; submitting the batch job…");
        form.submit();
        return;
      }
      const message = answer && answer.error ? answer.error.message : `The upload failed (HTTP ${status}).`;
      showProblem(message);
    });
    request.addEventListener("error", () => {
      request = null;
      showProblem("The upload failed: the connection to the server was lost. Try again.");
    });
    request.addEventListener("abort", () => {
      request = null;
      showProblem("Upload canceled.");
    });
    request.send(body);
  });
  // Back from the next page (the browser's page cache): the file field works again.
  window.addEventListener("pageshow", () => {
    input.disabled = false;
    markIdle(form);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll-url]").forEach(pollRegion);
  const form = document.getElementById("submit-form");
  if (form) wireStaging(form);
  const player = document.getElementById("player");
  if (player) wirePlayer(player);
});
