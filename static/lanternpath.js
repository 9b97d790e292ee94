/* Lanternpath: keeps screen readers, focus and the title in step with a chapter that
   streams over htmx's SSE extension. The story text is never a live region: #chapter-status
   speaks instead, and focus moves only when it was lost with the chapter the reader left. */
(function () {
  var sources = new WeakMap();
  function byId(id) { return document.getElementById(id); }
  function say(text) { var status = byId("chapter-status"); if (status) status.textContent = text; }

  document.addEventListener("htmx:afterSwap", function (event) {
    var chapter = event.target;
    if (chapter.id !== "chapter") return;
    say(byId("chapter-waiting") ? "Waiting for a storyteller…" : "Writing chapter " + chapter.dataset.number + "…");
    document.title = chapter.dataset.title;
  });

  document.addEventListener("htmx:sseOpen", function (event) {
    if (event.target.id !== "chapter") return;  // the page's picture stream has no text to start over
    var before = sources.get(event.target), text = byId("chapter-text");
    sources.set(event.target, event.detail.source);
    // htmx re-creates a closed EventSource without Last-Event-ID: the stream starts over.
    // (A browser's own reconnect keeps the same source and resumes after Last-Event-ID.)
    if (before && before !== event.detail.source && text) text.textContent = "";
  });

  document.addEventListener("htmx:sseMessage", function (event) {
    var kind = event.detail.type, chapter = byId("chapter"), heading = byId("chapter-heading");
    if (!chapter || !chapter.contains(event.target)) return;  // a picture, from the page's own stream
    var waiting = byId("chapter-waiting");
    if (waiting && chapter) {  // a storyteller took the chapter: its first text (or its end) came
      waiting.remove();
      if (kind === "chunk" || kind === "replace-content") say("Writing chapter " + chapter.dataset.number + "…");
    }
    if ((kind !== "choices" && kind !== "chapter-error") || !chapter || !heading) return;
    byId("chapter-text").setAttribute("aria-busy", "false");
    say(kind === "choices" ? "Chapter " + chapter.dataset.number + " is ready." : "");
    var active = document.activeElement;
    // preventScroll: a reader who scrolled down while the chapter was written stays there.
    if (!active || active === document.body || chapter.contains(active)) heading.focus({preventScroll: true});
  });
})();
