// Filtering, sorting and copy buttons for the lossfuzz report. No network, no libraries.
(function () {
  "use strict";
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const table = $("#matrix");
  const body = table.tBodies[0];

  function applyFilters() {
    const backend = $("#f-backend").value;
    const dtype = $("#f-dtype").value;
    const cls = $("#f-class").value;
    const quantity = $("#f-quantity").value;
    $$("[data-dtype]", table).forEach((el) => el.classList.toggle("hidden", !!dtype && el.dataset.dtype !== dtype));
    let shown = 0;
    $$("tr", body).forEach((tr) => {
      const cells = $$("td.cell", tr).filter((td) => !dtype || td.dataset.dtype === dtype);
      const classOk = !cls || cells.some((td) => td.dataset.class === cls);
      const visible = (!backend || tr.dataset.backend === backend) && classOk
        && (!quantity || tr.dataset.quantity === quantity);
      tr.classList.toggle("hidden", !visible);
      if (visible) shown += 1;
    });
    $$("details.cell-detail").forEach((d) => {
      const visible = (!backend || d.dataset.backend === backend) && (!dtype || d.dataset.dtype === dtype)
        && (!cls || d.dataset.class === cls) && (!quantity || d.dataset.quantity === quantity);
      d.classList.toggle("hidden", !visible);
    });
    $("#shown").textContent = shown + " of " + body.rows.length + " rows shown";
  }

  function sortBy(th) {
    const key = th.dataset.sort;
    const desc = !th.classList.contains("sorted-desc");
    $$("th", table).forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
    th.classList.add(desc ? "sorted-desc" : "sorted-asc");
    const value = (tr) => {
      if (key === "loss" || key === "impl" || key === "of") return tr.dataset[key];
      if (key === "special") return $("td.special", tr).dataset.special;
      const td = $$("td.cell", tr).find((c) => c.dataset.dtype === key);
      if (!td) return -1;
      const u = td.dataset.ulp;  // Python writes infinity as "inf", which parseFloat cannot read
      return u === "inf" ? Infinity : u === "nan" ? Infinity : parseFloat(u);
    };
    const rows = $$("tr", body);
    rows.sort((a, b) => {
      const va = value(a), vb = value(b);
      // not va - vb: inf - inf is NaN, which breaks the sort
      const order = typeof va === "string" ? va.localeCompare(vb) : (va > vb) - (va < vb);
      return desc ? -order : order;
    });
    rows.forEach((tr) => body.appendChild(tr));
  }

  function copy(button) {
    const text = $("pre", button.parentElement).textContent;
    const done = () => { button.textContent = "copied"; setTimeout(() => { button.textContent = "copy reproducer"; }, 1500); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => fallback(text, done));
    } else {
      fallback(text, done);
    }
  }

  function fallback(text, done) {
    const area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); done(); } finally { area.remove(); }
  }

  // A cell's details live in an inert <template> until it is first opened.
  function hydrate(details) {
    const tpl = details.querySelector(":scope > template");
    if (tpl) {
      details.appendChild(tpl.content.cloneNode(true));
      tpl.remove();
    }
  }

  function openCell(id) {
    const target = document.getElementById(id);
    if (target && target.tagName === "DETAILS") { hydrate(target); target.open = true; }
  }

  ["#f-backend", "#f-dtype", "#f-quantity", "#f-class"].forEach((sel) => $(sel).addEventListener("change", applyFilters));
  $$("th[data-sort]", table).forEach((th) => th.addEventListener("click", () => sortBy(th)));
  $$("details.cell-detail").forEach((d) => d.addEventListener("toggle", () => { if (d.open) hydrate(d); }));
  document.addEventListener("click", (event) => {
    const button = event.target.closest("button.copy");
    if (button) copy(button);
    const link = event.target.closest("td.cell a");
    if (link) openCell(link.getAttribute("href").slice(1));
  });
  $("#open-findings").addEventListener("click", () => {
    $$("details.cell-detail.unexpected").forEach((d) => { if (!d.classList.contains("hidden")) { hydrate(d); d.open = true; } });
  });
  $("#close-all").addEventListener("click", () => $$("details.cell-detail").forEach((d) => { d.open = false; }));
  if (location.hash) openCell(location.hash.slice(1));
  applyFilters();
})();
