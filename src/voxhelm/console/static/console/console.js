// Voxhelm console: live job progress, a busy note while a form waits, and the transcript
// player (segments seek the audio; the playing one is marked with aria-current).
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

function markSegment(segments, current) {
  for (const segment of segments) {
    if (segment === current) segment.setAttribute("aria-current", "true");
    else segment.removeAttribute("aria-current");
  }
}

function wirePlayer(player) {
  const segments = Array.from(document.querySelectorAll("button.segment"));
  const bounds = segments.map((s) => [parseFloat(s.dataset.start), parseFloat(s.dataset.end)]);
  for (const segment of segments) {
    // A button: Enter and Space activate it as a click does.
    segment.addEventListener("click", () => {
      player.currentTime = parseFloat(segment.dataset.start);
      markSegment(segments, segment);
      player.play().catch(() => {});
    });
  }
  player.addEventListener("timeupdate", () => {
    const time = player.currentTime;
    const index = bounds.findIndex(([start, end]) => time >= start && time < end);
    if (index >= 0) markSegment(segments, segments[index]);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-poll-url]").forEach(pollRegion);
  const form = document.getElementById("submit-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      button.setAttribute("aria-disabled", "true");
      button.classList.add("is-busy");
      document.getElementById("submit-status").textContent = form.dataset.busyText;
    });
  }
  const player = document.getElementById("player");
  if (player) wirePlayer(player);
});
