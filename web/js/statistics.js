/**
 * The statistics page (`/statistics`, coordinators and admins; docs/STATISTICS.md).
 *
 * The filters (period, region, dispute type, organisation) are the page's address
 * (`?from=&to=&region=&type=&organisation=`): a view can be bookmarked and shared, and
 * the browser's back button goes to the previous view. Each statistic of
 * `GET /api/statistics` is a chart (Apache ECharts, web/vendor/echarts/, drawn on a
 * canvas; its tooltips as canvas text: no inline style under the page's CSP) with a
 * table beside it holding the same numbers, which is what screen readers and tests read.
 * The region table drills down: a region with children is a button that filters to it.
 * The export links carry the same filters.
 *
 * Contract with tests: `document.body.dataset.state` is `loading`, `ready` or `error`,
 * and `document.body.dataset.query` the query string the numbers on the page are for;
 * the filters are `#f-from`, `#f-to`, `#f-region`, `#f-type`, `#f-organisation`; each
 * statistic is `section#stat-<name>` with `table` rows `tr[data-code]`, the count in
 * `td.stats-count`; the exports `#export-xlsx`, `#export-csv`.
 *
 * @module statistics
 */
import { ApiError, callJson, currentSession, sessionCredential } from "./api.js";
import { errorText, getLang, initI18n, onLangChange, t } from "./i18n.js";
import { h } from "./ui.js";

const $ = (id) => document.getElementById(id);
const FILTERS = { from: "f-from", to: "f-to", region: "f-region", type: "f-type", organisation: "f-organisation" };
const NAVY = ["#1f4e79", "#4d8fd1", "#2e6b4f", "#8a5a00", "#a3322a", "#6b7683", "#7a4e9c", "#2a8c8c", "#c07a2c", "#4a5665"];

const page = {
  credential: sessionCredential(""),
  /** @type {{dispute_types: any[], regions: any[]}|null} */
  options: null,
  /** @type {{id: string, name: string}[]} */
  organisations: [],
  /** @type {any} the last answer of GET /api/statistics */
  data: null,
  /** @type {Map<string, any>} the charts by statistic */
  charts: new Map(),
  seq: 0,
};

/** The filters in the address bar, as URLSearchParams. */
function fromAddress() {
  const here = new URLSearchParams(location.search);
  const chosen = new URLSearchParams();
  for (const name of Object.keys(FILTERS)) {
    const value = here.get(name);
    if (value) chosen.set(name, value);
  }
  return chosen;
}

/** The filters in the form. */
function fromForm() {
  const chosen = new URLSearchParams();
  for (const [name, id] of Object.entries(FILTERS)) {
    const value = $(id).value;
    if (value) chosen.set(name, value);
  }
  return chosen;
}

function toForm(params) {
  for (const [name, id] of Object.entries(FILTERS)) $(id).value = params.get(name) || "";
}

/** Put `params` in the address (keeping ?lang=), a new history entry. */
function toAddress(params) {
  const url = new URL(location.href);
  for (const name of Object.keys(FILTERS)) url.searchParams.delete(name);
  for (const [k, v] of params) url.searchParams.set(k, v);
  history.pushState(null, "", url);
}

function nameOf(item) {
  return getLang() === "en" && item.name_en ? item.name_en : item.name;
}

function regionOptions(nodes, depth, out) {
  for (const node of nodes) {
    out.push(h("option", { value: node.code, text: `${"\u3000".repeat(depth)}${node.name}` }));
    regionOptions(node.children || [], depth + 1, out);
  }
  return out;
}

function fillSelects() {
  const keep = fromForm();
  $("f-region").replaceChildren(
    h("option", { value: "", text: t("stats.filter.all_regions") }),
    ...regionOptions(page.options.regions, 0, []),
  );
  $("f-type").replaceChildren(
    h("option", { value: "", text: t("stats.filter.all_types") }),
    ...page.options.dispute_types.map((d) => h("option", { value: d.code, text: nameOf(d) })),
  );
  $("f-organisation").replaceChildren(
    h("option", { value: "", text: t("stats.filter.all_organisations") }),
    ...page.organisations.map((o) => h("option", { value: o.id, text: o.name })),
  );
  toForm(keep);
}

/** Each statistic: its rows (code, label, numbers) and how it is drawn. */
function statistics(data) {
  const percent = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)}%`);
  // the first number is the chart's: what is in hand now
  const loadColumns = [
    ["in_hand", "stats.col.in_hand"],
    ["overdue", "stats.col.overdue"],
    ["total", "stats.col.total"],
    ["succeeded", "stats.col.succeeded"],
    ["failed", "stats.col.failed"],
  ];
  const loadRows = (rows) =>
    rows.map((r) => ({ code: r.id, label: r.name, count: r.in_hand, cells: loadColumns.map(([k]) => r[k]) }));
  return [
    {
      name: "by_type",
      title: "stats.by_type",
      chart: "bar",
      head: ["stats.col.type", "stats.col.count", "stats.col.success_rate"],
      rows: data.by_type.map((r) => ({
        code: r.code,
        label: nameOf(r),
        count: r.count,
        cells: [r.count, percent(r.succeeded + r.failed ? r.succeeded / (r.succeeded + r.failed) : null)],
      })),
    },
    {
      name: "by_region",
      title: "stats.by_region",
      chart: "bar",
      head: ["stats.col.region", "stats.col.count"],
      rows: data.by_region.items.map((r) => ({ code: r.code, label: r.name, count: r.count, cells: [r.count], drill: r.has_children })),
    },
    {
      name: "by_source",
      title: "stats.by_source",
      chart: "pie",
      head: ["stats.col.source", "stats.col.count"],
      rows: data.by_source.map((r) => ({ code: r.code, label: t(`case.source.${r.code}`), count: r.count, cells: [r.count] })),
    },
    {
      name: "by_state",
      title: "stats.by_state",
      chart: "bar",
      head: ["stats.col.state", "stats.col.count"],
      rows: data.by_state.map((r) => ({ code: r.code, label: t(`case.state.${r.code}`), count: r.count, cells: [r.count] })),
    },
    {
      name: "monthly",
      title: "stats.monthly",
      chart: "line",
      head: ["stats.col.month", "stats.col.reported"],
      rows: data.monthly.map((r) => ({ code: r.month, label: r.month, count: r.count, cells: [r.count] })),
    },
    {
      name: "weekly",
      title: "stats.weekly",
      chart: "line",
      head: ["stats.col.week", "stats.col.reported"],
      rows: data.weekly.map((r) => ({ code: r.week, label: `${r.week}（${r.starts}）`, count: r.count, cells: [r.count] })),
    },
    {
      name: "mediators",
      title: "stats.mediators",
      chart: "bar",
      head: ["stats.col.mediator", ...loadColumns.map(([, key]) => key)],
      rows: loadRows(data.mediators),
    },
    {
      name: "organisations",
      title: "stats.organisations",
      chart: "bar",
      head: ["stats.col.organisation", ...loadColumns.map(([, key]) => key)],
      rows: loadRows(data.organisations),
    },
    {
      name: "experts",
      title: "stats.experts",
      chart: "bar",
      head: ["stats.col.expert", "stats.col.sessions"],
      rows: data.experts.map((r) => ({ code: r.id, label: r.name, count: r.sessions, cells: [r.sessions] })),
    },
  ];
}

function chartOption(stat) {
  const labels = stat.rows.map((r) => r.label);
  const values = stat.rows.map((r) => r.count);
  const base = {
    animation: false,
    color: NAVY,
    // canvas text, not HTML: the page's CSP allows no inline style
    tooltip: { trigger: stat.chart === "pie" ? "item" : "axis", renderMode: "richText", confine: true },
    grid: { left: 8, right: 16, top: 16, bottom: 8, containLabel: true },
  };
  if (stat.chart === "pie") {
    return {
      ...base,
      series: [{ type: "pie", radius: ["35%", "65%"], data: stat.rows.map((r) => ({ name: r.label, value: r.count })) }],
    };
  }
  if (stat.chart === "line") {
    return {
      ...base,
      xAxis: { type: "category", data: labels, boundaryGap: false },
      yAxis: { type: "value", minInterval: 1 },
      series: [{ type: "line", data: values, areaStyle: { opacity: 0.15 }, symbol: "none" }],
    };
  }
  return {
    ...base,
    xAxis: { type: "value", minInterval: 1 },
    yAxis: { type: "category", data: labels.slice().reverse(), axisLabel: { width: 110, overflow: "truncate" } },
    series: [{ type: "bar", data: values.slice().reverse(), barMaxWidth: 22 }],
  };
}

function chartHeight(stat) {
  return stat.chart === "bar" ? Math.max(160, 28 * stat.rows.length + 40) : 260;
}

function regionTrail(data) {
  const trail = [{ code: "", name: t("stats.filter.all_regions") }, ...data.by_region.path];
  return h(
    "nav.stats-trail",
    { "aria-label": t("stats.region_trail") },
    ...trail.map((step, i) =>
      i === trail.length - 1
        ? h("span", { text: step.name, "aria-current": "page" })
        : h("button.link-button", { type: "button", text: step.name, dataset: { region: step.code }, on: { click: () => drill(step.code) } }),
    ),
  );
}

function table(stat) {
  const id = `table-${stat.name}`;
  const rows = stat.rows.map((r) =>
    h(
      "tr",
      { dataset: { code: r.code } },
      h(
        "th",
        { scope: "row" },
        r.drill
          ? h("button.link-button", { type: "button", text: r.label, dataset: { region: r.code }, on: { click: () => drill(r.code) } })
          : r.label,
      ),
      ...r.cells.map((c, i) => h(i === 0 ? "td.stats-count" : "td", { text: String(c) })),
    ),
  );
  return h(
    "div.stats-table-wrap",
    { tabindex: "0", role: "region", "aria-labelledby": `heading-${stat.name}` },
    h(
      "table.stats-table",
      { id },
      h("thead", {}, h("tr", {}, ...stat.head.map((key) => h("th", { scope: "col", text: t(key) })))),
      h("tbody", {}, ...(rows.length ? rows : [h("tr", {}, h("td", { colspan: String(stat.head.length), text: t("stats.empty") }))])),
    ),
  );
}

function render() {
  const data = page.data;
  for (const chart of page.charts.values()) chart.dispose();
  page.charts.clear();
  $("stats-summary").hidden = false;
  $("fig-total").textContent = String(data.total);
  $("fig-overdue").textContent = String(data.overdue);
  $("fig-follow-up-overdue").textContent = String(data.follow_up_overdue);
  const rate = data.success_rate;
  $("fig-rate").textContent = rate.rate === null ? "—" : `${(rate.rate * 100).toFixed(1)}%`;
  $("fig-rate-detail").textContent = t("stats.rate_detail", {
    succeeded: rate.succeeded,
    failed: rate.failed,
    withdrawn: rate.withdrawn,
    closed: data.days_to_close.closed,
  });
  $("fig-median").textContent = data.days_to_close.median_days ?? "—";
  $("fig-p90").textContent = data.days_to_close.p90_days ?? "—";
  const sections = statistics(data).map((stat) => {
    const chart = h("div.stats-chart", {
      role: "img",
      "aria-labelledby": `heading-${stat.name}`,
      "aria-describedby": `table-${stat.name}`,
    });
    const section = h(
      "section.card.stats-section",
      { id: `stat-${stat.name}`, "aria-labelledby": `heading-${stat.name}` },
      h("h2", { id: `heading-${stat.name}`, text: t(stat.title) }),
      stat.name === "by_region" ? regionTrail(data) : null,
      h("div.stats-body", {}, chart, table(stat)),
    );
    return { stat, chart, section };
  });
  $("stats-sections").replaceChildren(...sections.map((s) => s.section));
  if (window.echarts) {
    for (const { stat, chart } of sections) {
      if (!stat.rows.length) continue;
      const drawn = window.echarts.init(chart, null, { renderer: "canvas", height: chartHeight(stat) });
      drawn.setOption(chartOption(stat));
      page.charts.set(stat.name, drawn);
    }
  }
}

function exportLinks(params) {
  const query = params.toString();
  $("export-xlsx").href = `/api/statistics/export.xlsx${query ? `?${query}` : ""}`;
  $("export-csv").href = `/api/statistics/export.csv${query ? `?${query}` : ""}`;
}

function showError(e) {
  const el = $("stats-error");
  el.hidden = !e;
  if (e) {
    const code = e instanceof ApiError ? e.code : "network";
    el.textContent =
      e instanceof ApiError && e.status === 403
        ? t("stats.forbidden")
        : errorText(code, e instanceof ApiError ? e.message : "", ["staff.error", "reason"]);
  }
}

/** Fetch and draw the statistics of `params` (a later call wins over an earlier one). */
async function load(params) {
  const seq = ++page.seq;
  document.body.dataset.state = "loading";
  exportLinks(params);
  try {
    const query = params.toString();
    const data = await callJson("GET", `/api/statistics${query ? `?${query}` : ""}`, page.credential);
    if (seq !== page.seq) return;
    page.data = data;
    showError(null);
    render();
    document.body.dataset.query = query;
    document.body.dataset.state = "ready";
  } catch (e) {
    if (seq !== page.seq) return;
    if (e instanceof ApiError && e.status === 401) {
      location.replace("/login");
      return;
    }
    showError(e);
    document.body.dataset.state = "error";
  }
}

function changed() {
  const params = fromForm();
  toAddress(params);
  load(params);
}

function drill(region) {
  $("f-region").value = region;
  changed();
}

async function main() {
  initI18n();
  let session;
  try {
    session = await currentSession();
  } catch (e) {
    $("stats-loading").hidden = true;
    showError(e);
    document.body.dataset.state = "error";
    return;
  }
  if (!session || !session.account) {
    location.replace("/login");
    return;
  }
  page.credential = sessionCredential(session.csrf_token);
  try {
    const [options, staff] = await Promise.all([
      callJson("GET", "/api/case-options", page.credential),
      callJson("GET", "/api/case-staff", page.credential),
    ]);
    page.options = options;
    page.organisations = staff.organisations || [];
  } catch (e) {
    page.options = { dispute_types: [], regions: [] };
    showError(e);
  }
  $("stats-loading").hidden = true;
  const params = fromAddress();
  fillSelects();
  toForm(params);
  for (const id of Object.values(FILTERS)) $(id).addEventListener("change", changed);
  $("stats-filters").addEventListener("submit", (e) => e.preventDefault());
  window.addEventListener("popstate", () => {
    const back = fromAddress();
    toForm(back);
    load(back);
  });
  window.addEventListener("resize", () => {
    for (const chart of page.charts.values()) chart.resize();
  });
  onLangChange(() => {
    fillSelects();
    if (page.data) render();
  });
  await load(params);
}

main();
