// arflow's own script for the HTML report: tables sort when a header is clicked (or
// Enter is pressed on it) and filter as text is typed into the box above them. It reads
// text with textContent and writes only textContent and attributes: nothing it touches
// is parsed as HTML. Written for arflow; no library.
(function () {
  "use strict";
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function sortKey(cell) {
    if (!cell) return { text: "", num: null };
    var raw = cell.getAttribute("data-sort");
    var text = raw !== null ? raw : cell.textContent.trim();
    var num = text === "" ? NaN : Number(text.replace(/,/g, ""));
    return { text: text, num: isNaN(num) ? null : num };
  }

  function compare(a, b) {
    if (a.num !== null && b.num !== null) return a.num - b.num;
    if (a.num !== null) return -1;
    if (b.num !== null) return 1;
    return a.text.localeCompare(b.text);
  }

  each(document.querySelectorAll("table.sortable"), function (table) {
    var heads = table.tHead.rows[0].cells;
    each(heads, function (th, col) {
      th.tabIndex = 0;
      th.title = th.title || "sort";
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        each(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) {
          var c = compare(sortKey(r1.cells[col]), sortKey(r2.cells[col]));
          return ascending ? c : -c;
        });
        each(rows, function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); }
      });
    });
  });

  each(document.querySelectorAll("input.filter"), function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    var counter = document.getElementById(input.getAttribute("data-count"));
    if (!table) return;
    function apply() {
      var q = input.value.trim().toLowerCase();
      var shown = 0;
      each(table.tBodies[0].rows, function (row) {
        var hit = q === "" || row.textContent.toLowerCase().indexOf(q) !== -1;
        row.hidden = !hit;
        if (hit) shown += 1;
      });
      if (counter) counter.textContent = String(shown);
    }
    input.addEventListener("input", apply);
    apply();
  });
})();
