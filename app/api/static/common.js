// What the status and the settings page share (loaded by the shared head, static/head.html): the
// element lookup and the live picture. The picture is fetched rather than set as an <img src> so that
// the token goes with it; it is shown from a blob URL, the previous one released once the new one is up.
"use strict";
const $ = (id) => document.getElementById(id);

// A function that shows `url` (api/latest.jpg with its options) in #frame, notes in #frame-note;
// `headers()` gives the request headers, `onShown(img, first)` runs when a picture is on screen.
function liveFrame(url, headers, onShown) {
  let shown = null;
  return async function refresh() {
    try {
      const r = await fetch(url, { headers: headers(), cache: "no-store" });
      if (r.status === 404) { $("frame-note").textContent = "waiting for the first frame…"; return; }
      if (!r.ok) throw new Error("HTTP " + r.status);
      const blobUrl = URL.createObjectURL(await r.blob());
      const img = $("frame");
      img.onload = () => {
        const first = img.dataset.loaded !== "1";
        img.dataset.loaded = "1";
        if (shown) URL.revokeObjectURL(shown);
        shown = blobUrl;
        if (onShown) onShown(img, first);
      };
      img.src = blobUrl;
      $("frame-note").textContent = "";
    } catch (e) { $("frame-note").textContent = "frame: " + e.message; }
  };
}
