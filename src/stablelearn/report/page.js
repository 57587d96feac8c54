// stablelearn report page: sortable tables, charts drawn as they come into view (and
// when a drill-down opens), then <html data-interactive="true">.
(function () {
  "use strict";
  const root = document.documentElement;

  function compareCells(a, b, numeric, ascending) {
    const sign = ascending ? 1 : -1;
    if (numeric) {
      const x = a.dataset.value, y = b.dataset.value;
      if (x === undefined && y === undefined) return 0;
      if (x === undefined) return 1; // missing values sort last either way
      if (y === undefined) return -1;
      return sign * (parseFloat(x) - parseFloat(y));
    }
    return sign * compareText(a.textContent.trim(), b.textContent.trim());
  }

  // Text compares piece by piece: numbers (decimals too) as numbers, the rest as words,
  // so "lr = 0.001" < "lr = 0.01" and "relu-5" < "relu-15"; equal pieces fall back to
  // the plain order, which makes a second click reverse exactly.
  const PIECES = /(\d+(?:\.\d+)?(?:e[-+]?\d+)?)/i;
  function compareText(x, y) {
    const p = x.split(PIECES), q = y.split(PIECES);
    for (let i = 0; i < Math.min(p.length, q.length); i++) {
      const numeric = i % 2 === 1; // split with a capture group: odd pieces are numbers
      const d = numeric ? parseFloat(p[i]) - parseFloat(q[i]) : p[i].localeCompare(q[i]);
      if (d) return d;
    }
    return p.length - q.length || (x < y ? -1 : x > y ? 1 : 0);
  }

  function makeSortable(table) {
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach(function (th, column) {
      const button = th.querySelector("button.sort");
      if (!button) return;
      button.addEventListener("click", function () {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const numeric = rows.some(function (r) { return r.cells[column].dataset.value !== undefined; });
        rows.sort(function (a, b) { return compareCells(a.cells[column], b.cells[column], numeric, ascending); });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  document.querySelectorAll("table.sortable").forEach(makeSortable);

  function shown(div) { return !div.closest("details:not([open])"); }

  function render(div) {
    if (div.dataset.rendered || div.dataset.rendering) return Promise.resolve();
    div.dataset.rendering = "true";
    const spec = JSON.parse(document.getElementById(div.dataset.spec).textContent);
    const options = { renderer: "svg", actions: false, tooltip: { theme: "light" } };
    const label = div.getAttribute("aria-label");
    return window.vegaEmbed(div, spec, options)
      .then(function () {
        // vega-embed labels its container "Vega visualization"; keep the real alt text
        div.setAttribute("role", "img");
        if (label) div.setAttribute("aria-label", label);
        div.style.minHeight = ""; // the height kept free for it until drawn
        div.dataset.rendered = "true";
      })
      .catch(function (err) {
        div.textContent = "This chart could not be drawn: " + err.message;
        console.error(err);
      });
  }

  const charts = Array.from(document.querySelectorAll(".vega-chart"));
  const near = 600; // px beyond the viewport that count as "in view"
  const observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting && shown(entry.target)) {
        observer.unobserve(entry.target);
        render(entry.target);
      }
    });
  }, { rootMargin: near + "px 0px" });
  charts.forEach(function (div) { observer.observe(div); });
  document.querySelectorAll("details").forEach(function (details) {
    details.addEventListener("toggle", function () {
      if (details.open) details.querySelectorAll(".vega-chart").forEach(render);
    });
  });
  const first = charts.filter(function (div) {
    return shown(div) && div.getBoundingClientRect().top < window.innerHeight + near;
  });
  Promise.all(first.map(render)).then(function () { root.dataset.interactive = "true"; });
})();
