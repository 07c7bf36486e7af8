// The trainserve dashboard: plain JavaScript, no build step, no CDN; every request goes through api().
"use strict";

const KEY = "trainserve.apiKey";
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "stopped"]);
const view = document.getElementById("view");
let pageAbort = new AbortController();  // aborted on navigation: closes the page's event streams

// ---- HTTP: every call carries the stored API key ----------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    super(typeof detail === "string" ? detail : Array.isArray(detail) ? detail.map((d) => `${d.field}: ${d.msg}`).join("; ") : `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
}

function authHeaders(extra = {}) {
  const key = localStorage.getItem(KEY);
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: authHeaders(options.headers) });
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : null;
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

const postJson = (path, data) => api(path, { method: "POST", body: JSON.stringify(data), headers: { "Content-Type": "application/json" } });

// An <img> can't send headers, so images are fetched with the key and shown from a blob URL.
async function showImage(img, path) {
  try {
    const response = await fetch(path, { headers: authHeaders(), cache: "no-cache" });
    if (!response.ok) {
      const body = await response.json().catch(() => null);
      img.replaceWith(el("p", { class: "muted" }, body && body.detail ? body.detail : `HTTP ${response.status}`));
      return;
    }
    const old = img.src;
    img.src = URL.createObjectURL(await response.blob());
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  } catch (err) { /* navigation aborted the page */ }
}

// Server-Sent Events through fetch (EventSource can't send Authorization): calls onEvent(kind, data).
async function streamEvents(path, onEvent, signal) {
  const response = await fetch(path, { headers: authHeaders({ Accept: "text/event-stream" }), signal });
  if (!response.ok) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let kind = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) kind = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(kind, JSON.parse(data));
    }
  }
}

function follow(jobId, onEvent) {
  streamEvents(`/v1/jobs/${jobId}/events`, onEvent, pageAbort.signal).catch(() => {});
}

// ---- small DOM helpers -------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : String(c));
  return node;
}

const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);
const num = (x, digits = 4) => (x === null || x === undefined ? "–" : Number(x).toFixed(digits));
function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.round(s);
  return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}
function bar(fraction) { return el("span", { class: "bar" }, el("div", { style: `width:${Math.round(100 * (fraction || 0))}%` })); }
function bestText(job) {
  const best = job.best;
  if (!best) return "–";
  const m = best.metrics || {};
  return m.val_accuracy !== null && m.val_accuracy !== undefined ? `${pct(m.val_accuracy)} (epoch ${best.epoch})` :
    m.val_mse !== undefined ? `MSE ${num(m.val_mse)} (epoch ${best.epoch})` : `epoch ${best.epoch}`;
}
function errorBox(err) { return el("p", { class: "error" }, err.message || String(err)); }

// A full id, selectable, with a button that copies it (ids are what the CLI and the API take).
function idView(id, href) {
  const text = href ? el("a", { href, class: "id" }, id) : el("code", { class: "id" }, id);
  const copy = el("button", { class: "copy", title: "copy the id", type: "button", onclick: async () => {
    try { await navigator.clipboard.writeText(id); } catch {  // no clipboard over plain http: select it instead
      const range = document.createRange(); range.selectNodeContents(text);
      getSelection().removeAllRanges(); getSelection().addRange(range); document.execCommand("copy");
    }
    copy.textContent = "copied"; setTimeout(() => (copy.textContent = "copy"), 1200);
  } }, "copy");
  return el("span", { class: "id-box" }, text, copy);
}

// ---- jobs: live list, submit form, cancel ------------------------------------------------------

function jobRow(job) {
  const row = el("tr", { "data-job": job.id });
  fillJobRow(row, job);
  return row;
}

function fillJobRow(row, job) {
  const p = job.progress || {};
  const live = !TERMINAL.has(job.status);
  row.replaceChildren(
    el("td", {}, el("input", { type: "checkbox", class: "pick", value: job.id })),
    el("td", {}, job.name ? el("div", {}, job.name) : "", idView(job.id, `#/jobs/${job.id}`)),
    el("td", {}, `${job.model} / ${job.dataset}`),
    el("td", {}, el("span", { class: `status ${job.status}` }, job.status)),
    el("td", { class: "progress" }, bar(p.fraction), ` ${Math.round(100 * (p.fraction || 0))}%`,
      p.epochs ? ` · epoch ${p.epoch || 0}/${p.epochs}` : ""),
    el("td", {}, live ? duration(p.eta_seconds) : "–"),
    el("td", {}, bestText(job)),
    el("td", {}, live ? el("button", { onclick: () => cancelJob(job.id) }, "Cancel") : ""),
  );
}

async function cancelJob(jobId) {
  try { await api(`/v1/jobs/${jobId}/cancel`, { method: "POST" }); } catch (err) { alert(err.message); }
  route();
}

function watchRow(row, job) {
  follow(job.id, (kind, data) => {
    if (kind === "progress") job.progress = { ...job.progress, ...data };
    if (kind === "status") job.status = data.status;
    if (kind === "epoch") job.best = job.best && (job.best.metrics || {}).val_accuracy >= data.val_accuracy ? job.best : { epoch: data.epoch, metrics: data };
    if (kind === "status" && TERMINAL.has(data.status)) {
      api(`/v1/jobs/${job.id}`).then((fresh) => fillJobRow(row, fresh)).catch(() => {});
      return;
    }
    fillJobRow(row, job);
  });
}

async function jobsPage() {
  const tbody = el("tbody");
  const table = el("table", { id: "jobs" },
    el("thead", {}, el("tr", {}, ["", "job", "model / dataset", "status", "progress", "ETA", "best", ""].map((h) => el("th", {}, h)))), tbody);
  const compare = el("button", { onclick: () => {
    const ids = [...document.querySelectorAll(".pick:checked")].map((c) => c.value);
    location.hash = `#/compare?jobs=${ids.join(",")}`;
  } }, "Compare selected");
  view.replaceChildren(el("h1", {}, "Jobs"), el("section", {}, table, el("p", {}, compare)),
    el("section", { id: "submit" }, el("h2", {}, "New job"), el("p", {}, "Loading the catalog…")));
  submitForm(document.getElementById("submit")).catch((err) => document.getElementById("submit").append(errorBox(err)));
  const signal = pageAbort.signal;
  const addNew = async () => {
    const jobs = (await api("/v1/jobs?limit=50")).data;
    if (signal.aborted) return;
    for (const job of jobs.reverse()) {  // oldest first, each new one goes on top
      if (tbody.querySelector(`tr[data-job="${job.id}"]`)) continue;
      const row = jobRow(job);
      tbody.prepend(row);
      if (!TERMINAL.has(job.status)) watchRow(row, job);
    }
  };
  await addNew();
  // jobs submitted elsewhere (CLI, curl) show up too; existing rows move by their own event streams
  const timer = setInterval(() => (signal.aborted ? clearInterval(timer) : addNew().catch(() => {})), 5000);
}

// The form comes from /v1/catalog: one field per hyperparameter of the chosen model, pre-filled with
// the dataset's defaults and bounded by the schema; a 422 is shown next to the field it names.
async function submitForm(section) {
  const catalog = await api("/v1/catalog");
  const models = catalog.models;
  const modelSelect = el("select", { name: "model" }, models.map((m) => el("option", { value: m.name }, m.name)));
  const datasetSelect = el("select", { name: "dataset" });
  const nameInput = el("input", { name: "name", placeholder: "optional label" });
  const feedbackInput = el("input", { type: "checkbox", id: "include-feedback", name: "include_feedback" });
  const fields = el("div", { class: "fields" });
  const message = el("p", { class: "error", id: "submit-error" });
  const current = () => models.find((m) => m.name === modelSelect.value);

  function fillDatasets() {
    datasetSelect.replaceChildren(...current().datasets.map((d) => el("option", { value: d }, d)));
    fillFields();
  }
  function fillFields() {
    const model = current();
    const defaults = model.defaults[datasetSelect.value] || {};
    const props = model.hyperparameters_schema.properties;
    fields.replaceChildren(...Object.entries(props).map(([name, schema]) => hyperparameterField(name, schema, defaults[name])));
  }
  modelSelect.addEventListener("change", fillDatasets);
  datasetSelect.addEventListener("change", fillFields);
  fillDatasets();

  // novalidate: the API is the one judge of a value, and its 422 sentence is shown beside the field
  const form = el("form", { id: "submit-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    form.querySelectorAll(".field .error").forEach((e) => (e.textContent = ""));
    message.textContent = "";
    const model = current();
    const defaults = model.defaults[datasetSelect.value] || {};
    const hyperparameters = {};
    for (const input of fields.querySelectorAll("[data-hp]")) {
      const value = readField(input);
      if (JSON.stringify(value) !== JSON.stringify(defaults[input.dataset.hp])) hyperparameters[input.dataset.hp] = value;
    }
    try {
      const body = { model: model.name, dataset: datasetSelect.value, name: nameInput.value || null, hyperparameters };
      if (feedbackInput.checked) body.include_feedback = true;  // sent only when asked: older servers refuse the field
      await postJson("/v1/jobs", body);
      route();
    } catch (err) {
      showFieldErrors(form, err, message);
    }
  } },
  el("div", { class: "fields" }, el("div", { class: "field" }, el("label", {}, "model"), modelSelect),
    el("div", { class: "field" }, el("label", {}, "dataset"), datasetSelect),
    el("div", { class: "field" }, el("label", {}, "name"), nameInput),
    el("div", { class: "field", "data-field": "include_feedback" },
      el("label", { title: "also train on the inputs people corrected (the dataset's feedback set, as it is now)" }, "include feedback"),
      feedbackInput, el("div", { class: "error" }))),
  el("h2", {}, "Hyperparameters"), fields, message, el("button", { type: "submit" }, "Train"));
  section.replaceChildren(el("h2", {}, "New job"), form);
}

function hyperparameterField(name, schema, value) {
  const options = schema.enum || (schema.anyOf || []).flatMap((s) => s.enum || []);
  const types = [schema.type, ...(schema.anyOf || []).map((s) => s.type)];
  let input;
  if (options.length) {
    input = el("select", {}, options.map((o) => el("option", { value: o, selected: o === value }, o)));
  } else if (types.includes("boolean")) {
    input = el("input", { type: "checkbox", checked: !!value });
  } else if ((types.includes("integer") || types.includes("number")) && !types.includes("array")) {
    const bounds = [schema, ...(schema.anyOf || [])].find((s) => s.type === "integer" || s.type === "number") || {};
    input = el("input", { type: "number", step: bounds.type === "integer" ? 1 : "any", min: bounds.minimum ?? bounds.exclusiveMinimum,
      max: bounds.maximum ?? bounds.exclusiveMaximum, value: value ?? "", placeholder: value === null ? "none" : null });
  } else {
    input = el("input", { value: value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value) });
  }
  input.dataset.hp = name;
  input.name = `hyperparameters.${name}`;
  const range = [schema.minimum ?? schema.exclusiveMinimum, schema.maximum ?? schema.exclusiveMaximum];
  return el("div", { class: "field", "data-field": `hyperparameters.${name}` },
    el("label", { title: schema.description || "" }, name, range[0] !== undefined || range[1] !== undefined ? ` (${range[0] ?? ""}…${range[1] ?? ""})` : ""),
    input, el("div", { class: "error" }));
}

function readField(input) {
  if (input.type === "checkbox") return input.checked;
  const text = input.value.trim();
  if (text === "") return null;
  if (input.type === "number") return Number(text);
  try { return JSON.parse(text); } catch { return text; }
}

function showFieldErrors(form, err, message) {
  const unplaced = [];
  for (const d of Array.isArray(err.detail) ? err.detail : []) {
    const box = form.querySelector(`[data-field="${CSS.escape(d.field)}"] .error`);
    if (box) box.textContent = d.msg; else unplaced.push(`${d.field}: ${d.msg}`);
  }
  if (!Array.isArray(err.detail) || unplaced.length) message.textContent = unplaced.join("; ") || err.message;
}

// ---- one job: live curves, confusion matrix, mistakes, checkpoints, attempts, config ------------

async function jobPage(jobId) {
  let job = await api(`/v1/jobs/${jobId}`);
  const head = el("section", { id: "job-head" });
  const loss = el("img", { alt: "loss curves", id: "plot-loss" });
  const metric = el("img", { alt: "metric curves", id: "plot-metric" });
  const results = el("div", { class: "plots", id: "results" });
  const checkpoints = el("section", {}, el("h2", {}, "Checkpoints"));
  const attempts = el("section", { id: "attempts", hidden: true });
  view.replaceChildren(el("h1", {}, job.name || `Job ${job.id}`), head,
    el("section", {}, el("h2", {}, "Curves"), el("div", { class: "plots" }, loss, metric)),
    el("section", {}, el("h2", {}, "Test set"), results), checkpoints, attempts,
    el("section", {}, el("h2", {}, "Config"), el("pre", {}, JSON.stringify({ model: job.model, dataset: job.dataset, seed: job.seed, hyperparameters: job.hyperparameters }, null, 2))));

  const refresh = async () => {
    job = await api(`/v1/jobs/${jobId}`);
    renderJobHead(head, job);
    showImage(loss, `/v1/jobs/${jobId}/plots/loss.png`);
    showImage(metric, `/v1/jobs/${jobId}/plots/metric.png`);
    renderResults(results, job);
    renderCheckpoints(checkpoints, jobId);
    renderAttempts(attempts, job.attempts);
  };
  await refresh();
  // short epochs end several times a second: redraw at most once a second, and once more at the end
  let pending = null;
  const refreshSoon = () => { pending = pending || setTimeout(() => { pending = null; refresh().catch(() => {}); }, 1000); };
  if (!TERMINAL.has(job.status)) {
    follow(jobId, (kind, data) => {
      if (kind === "progress") { job.progress = { ...job.progress, ...data }; renderJobHead(head, job); }
      if (kind === "epoch" || kind === "checkpoint") refreshSoon();
      if (kind === "status") refresh().catch(() => {});
    });
  }
}

function renderJobHead(head, job) {
  const p = job.progress || {};
  const live = !TERMINAL.has(job.status);
  head.replaceChildren(
    el("p", {}, el("span", { class: `status ${job.status}` }, job.status), ` ${job.model} on ${job.dataset} · id `, idView(job.id)),
    el("p", {}, bar(p.fraction), ` ${Math.round(100 * (p.fraction || 0))}%`, p.epochs ? ` · epoch ${p.epoch || 0}/${p.epochs}` : "",
      live ? ` · ETA ${duration(p.eta_seconds)}` : "", p.samples_per_second ? ` · ${Math.round(p.samples_per_second)} samples/s` : ""),
    el("p", {}, `best: ${bestText(job)}`, job.test_metrics && job.test_metrics.accuracy !== undefined && job.test_metrics.accuracy !== null ?
      ` · test accuracy ${pct(job.test_metrics.accuracy)}` : ""),
    job.error ? el("p", { class: "error" }, job.error) : "",
    live ? el("button", { onclick: () => cancelJob(job.id) }, "Cancel") : "",
  );
}

function renderResults(box, job) {
  if (job.status !== "succeeded") {
    box.replaceChildren(el("p", { class: "muted" }, "The confusion matrix and the most confident mistakes appear when the job succeeds."));
    return;
  }
  if (box.dataset.done) return;
  box.dataset.done = "1";
  const cm = el("img", { alt: "confusion matrix", id: "plot-confusion" });
  const mistakes = el("img", { alt: "most confident mistakes", id: "plot-mistakes" });
  box.replaceChildren(cm, mistakes);
  showImage(cm, `/v1/jobs/${job.id}/plots/confusion_matrix.png`);
  showImage(mistakes, `/v1/jobs/${job.id}/plots/mistakes.png`);
}

async function renderCheckpoints(section, jobId) {
  const rows = (await api(`/v1/jobs/${jobId}/checkpoints`)).data;
  section.replaceChildren(el("h2", {}, "Checkpoints"), rows.length ? el("table", {},
    el("tr", {}, ["epoch", "best", "val accuracy", "val loss", "size", "sha256", ""].map((h) => el("th", {}, h))),
    rows.map((c) => el("tr", {}, el("td", {}, c.epoch), el("td", {}, c.is_best ? "★" : ""), el("td", {}, pct(c.metrics.val_accuracy)),
      el("td", {}, num(c.metrics.val_loss)), el("td", {}, `${(c.size_bytes / 1024).toFixed(0)} KiB`), el("td", {}, c.sha256.slice(0, 12)),
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); download(c.download_url); } }, "download"))))) :
    el("p", { class: "muted" }, "none yet"));
}

async function download(path) {
  const response = await fetch(path, { headers: authHeaders() });
  const name = ((response.headers.get("content-disposition") || "").match(/filename="?([^";]+)/) || [])[1] || "checkpoint.pt";
  const link = el("a", { href: URL.createObjectURL(await response.blob()), download: name });
  link.click();
}

// `attempts` arrives with the job lifecycle work; shown whenever the job carries it.
function renderAttempts(section, attempts) {
  if (!Array.isArray(attempts) || !attempts.length) return;
  const keys = [...new Set(attempts.flatMap((a) => Object.keys(a)))];
  section.hidden = false;
  section.replaceChildren(el("h2", {}, "Attempts"), el("table", {}, el("tr", {}, keys.map((k) => el("th", {}, k))),
    attempts.map((a) => el("tr", {}, keys.map((k) => el("td", {}, typeof a[k] === "object" && a[k] !== null ? JSON.stringify(a[k]) : a[k] ?? ""))))));
}

// ---- compare: overlaid curves and a table of hyperparameters and metrics ------------------------

async function comparePage(params) {
  const ids = (params.get("jobs") || "").split(",").filter(Boolean);
  if (!ids.length) {
    view.replaceChildren(el("h1", {}, "Compare"), el("p", {}, "Tick jobs in the ", el("a", { href: "#/" }, "jobs list"), " and press “Compare selected”."));
    return;
  }
  const jobs = await Promise.all(ids.map((id) => api(`/v1/jobs/${id}`)));
  const metrics = await Promise.all(ids.map((id) => api(`/v1/jobs/${id}/metrics`)));
  const metricSelect = el("select", {}, ["val_accuracy", "train_accuracy", "val_loss", "train_loss", "val_mse", "train_mse"].map((m) => el("option", { value: m }, m)));
  const plot = el("img", { alt: "compared curves", id: "plot-compare" });
  const draw = () => showImage(plot, `/v1/plots/compare.png?metric=${metricSelect.value}&${ids.map((id) => `jobs=${encodeURIComponent(id)}`).join("&")}`);
  metricSelect.addEventListener("change", draw);
  draw();
  const hpKeys = [...new Set(jobs.flatMap((j) => Object.keys(j.hyperparameters)))].sort();
  const differing = hpKeys.filter((k) => new Set(jobs.map((j) => JSON.stringify(j.hyperparameters[k]))).size > 1);
  const stat = (rows, key, fn) => { const v = rows.map((r) => r[key]).filter((x) => x !== null && x !== undefined); return v.length ? fn(...v) : null; };
  const table = el("table", { id: "compare-table" },
    el("tr", {}, ["job", "model / dataset", "status", ...differing, "best val acc", "min val loss", "max val loss", "test acc"].map((h) => el("th", {}, h))),
    jobs.map((j, i) => el("tr", {}, el("td", {}, j.name ? el("div", {}, j.name) : "", idView(j.id, `#/jobs/${j.id}`)), el("td", {}, `${j.model} / ${j.dataset}`),
      el("td", {}, j.status), differing.map((k) => el("td", {}, JSON.stringify(j.hyperparameters[k]))),
      el("td", {}, pct(stat(metrics[i].data, "val_accuracy", Math.max))), el("td", {}, num(stat(metrics[i].data, "val_loss", Math.min))),
      el("td", {}, num(stat(metrics[i].data, "val_loss", Math.max))), el("td", {}, pct(j.test_metrics && j.test_metrics.accuracy)))));
  view.replaceChildren(el("h1", {}, `Compare ${jobs.length} jobs`), el("section", {}, el("label", {}, "metric "), metricSelect, el("div", { class: "plots" }, plot)),
    el("section", {}, el("h2", {}, differing.length ? "Hyperparameters that differ, and metrics" : "Metrics (same hyperparameters)"), table));
}

// ---- models: serving model per dataset, promote / roll back, history ---------------------------

async function modelsPage(params = new URLSearchParams()) {
  const [models, history] = await Promise.all([api("/v1/models"), api("/v1/models/history")]);
  const datasets = [...new Set(models.data.map((m) => m.dataset))].sort();
  const sections = datasets.map((d) => el("section", { "data-dataset": d }, el("h2", {}, d),
    el("table", {}, el("tr", {}, ["id", "model", "job", "epoch", "val acc", "test acc", "created", ""].map((h) => el("th", {}, h))),
      models.data.filter((m) => m.dataset === d).map((m) => el("tr", { class: m.serving ? "serving" : "", "data-model": m.id },
        el("td", {}, m.id), el("td", {}, m.model), el("td", {}, idView(m.job_id, `#/jobs/${m.job_id}`)),
        el("td", {}, m.epoch), el("td", {}, pct(m.val_accuracy)), el("td", {}, pct(m.test_accuracy)), el("td", {}, new Date(m.created_at).toLocaleString()),
        el("td", {}, m.serving ? "serving" : el("button", { onclick: () => promote(m.id) }, "Promote"), " ",
          el("button", { class: "quality-button", onclick: () => { location.hash = `#/models?quality=${m.id}`; } }, "Quality"))))),
    el("h2", {}, "History"), el("table", {}, history.data.filter((e) => e.dataset === d).reverse().map((e) =>
      el("tr", {}, el("td", {}, new Date(e.at).toLocaleString()), el("td", {}, `model ${e.model_id}`), el("td", {}, e.reason),
        el("td", {}, e.previous_model_id ? `after model ${e.previous_model_id}` : ""))))));
  const chosen = models.data.find((m) => String(m.id) === params.get("quality"));
  const panel = chosen ? [await qualityPanel(chosen, params.get("window") || "1h")] : [];
  view.replaceChildren(el("h1", {}, "Models"), ...panel, ...(sections.length ? sections : [el("p", {}, "No model yet: a classification job registers one when it succeeds.")]));
}

// The selected version's live quality: drift flag, the latest window's figures, and the plot over windows.
const QUALITY_WINDOWS = { "5m": 36, "1h": 24, "1d": 14 };  // window → how many to show (3 h, a day, two weeks)

async function qualityPanel(model, window) {
  if (!(window in QUALITY_WINDOWS)) window = "1h";
  const windows = QUALITY_WINDOWS[window];
  const query = `window=${encodeURIComponent(window)}&windows=${windows}`;
  const q = await api(`/v1/models/${model.id}/quality?${query}`);
  const latest = q.windows[q.windows.length - 1];
  const judged = q.windows.filter((w) => w.drift !== null);
  const flag = q.drift ? "drift" : judged.length ? "no drift" : "too few predictions to judge";
  const reasons = q.windows.flatMap((w) => w.drift ? [`${new Date(w.start).toLocaleString()}: ${w.drift_reasons.join("; ")}`] : []);
  const plot = el("img", { alt: "quality over windows", id: "quality-plot" });
  showImage(plot, `/v1/models/${model.id}/quality.png?${query}`);
  const pick = el("select", { id: "quality-window", onchange: (e) => { location.hash = `#/models?quality=${model.id}&window=${e.target.value}`; } },
    Object.entries(QUALITY_WINDOWS).map(([w, n]) => el("option", { value: w, selected: w === window }, `${n} × ${w}`)));
  return el("section", { id: "quality", "data-model": model.id, "data-drift": String(q.drift) },
    el("h2", {}, `Live quality — ${model.model} #${model.id} (${model.dataset}) `, el("span", { class: `status ${q.drift ? "failed" : "succeeded"}`, id: "drift-flag" }, flag)),
    el("p", {}, "windows ", pick, el("span", { class: "muted" }, ` · label mix ${q.label_mix}`)),
    el("table", {}, el("tr", {}, ["latest window", "requests", "abstain", "low conf.", "OOD", "label JS", "mean conf.", "feedback acc."].map((h) => el("th", {}, h))),
      el("tr", {}, el("td", {}, new Date(latest.start).toLocaleString()), el("td", { id: "quality-requests" }, latest.requests),
        el("td", {}, pct(latest.abstain_rate)), el("td", {}, pct(latest.low_confidence_rate)), el("td", {}, pct(latest.ood_rate)),
        el("td", {}, latest.label_js === null ? "–" : latest.label_js.toFixed(3)), el("td", {}, pct(latest.confidence.mean)),
        el("td", {}, latest.feedback ? `${pct(latest.feedback_accuracy)} of ${latest.feedback}` : "–"))),
    el("div", { class: "plots" }, plot), ...reasons.map((r) => el("p", { class: "error" }, r)));
}

async function promote(modelId) {
  try { await api(`/v1/models/${modelId}/promote`, { method: "POST" }); } catch (err) { alert(err.message); }
  route();
}

// ---- predict: drop images or draw a digit; top-k and the input the model saw --------------------

async function predictPage(params) {
  const [catalog, models] = await Promise.all([api("/v1/catalog"), api("/v1/models")]);
  const servable = (d) => d.servable ?? (d.task === "classification" && d.input_kind !== "tabular");
  const specs = catalog.datasets.filter(servable);
  const datasets = specs.map((d) => d.name);
  // preselect: the one named in the URL, else a served digit set (the canvas is for digits), else any served set
  const served = new Set(models.data.filter((m) => m.serving).map((m) => m.dataset));
  const isDigits = (name) => (specs.find((d) => d.name === name) || {}).upload_framing === "digit";
  const chosen = params.get("dataset") || datasets.find((d) => served.has(d) && isDigits(d)) ||
    datasets.find((d) => served.has(d)) || datasets.find(isDigits);
  const datasetSelect = el("select", { id: "predict-dataset" }, datasets.map((d) => el("option", { value: d, selected: d === chosen }, d)));
  const results = el("div", { id: "predictions" });
  const fileInput = el("input", { type: "file", multiple: true, accept: "image/*", onchange: () => send([...fileInput.files]) });
  const drop = el("div", { id: "drop" }, "Drop images here, or ", fileInput);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); send([...e.dataTransfer.files]); });
  const canvas = el("canvas", { width: 280, height: 280, id: "digit-canvas" });
  setupCanvas(canvas);
  // kept inputs with a correction are what a job with include_feedback trains on
  const keepInput = el("input", { type: "checkbox", id: "predict-keep", checked: true });

  async function send(files) {
    const form = new FormData();
    files.forEach((f, i) => form.append("files", f, f.name || `file-${i + 1}.png`));
    form.append("top_k", "3");
    results.replaceChildren(el("p", {}, "Predicting…"));
    try {
      const keep = keepInput.checked ? "&keep=true" : "";
      const answer = await api(`/v1/predict/${datasetSelect.value}?explain=true${keep}`, { method: "POST", body: form });
      const classes = (specs.find((d) => d.name === datasetSelect.value) || {}).classes || [];
      results.replaceChildren(el("p", { class: "muted" }, `model ${answer.model.id} (${answer.model.type}, job `, idView(answer.model.job_id, `#/jobs/${answer.model.job_id}`), ")"),
        ...answer.predictions.map((p) => predictionView(p, classes)));
    } catch (err) { results.replaceChildren(errorBox(err)); }
  }
  const predictDrawing = () => canvas.toBlob((blob) => send([new File([blob], "drawing.png", { type: "image/png" })]), "image/png");
  // the canvas only for digit sets (a drawn 3 means nothing to a photo or shapes model); files for every set
  const drawing = el("section", { id: "drawing" }, el("h2", {}, "Draw a digit"), canvas,
    el("p", {}, el("button", { id: "predict-drawing", onclick: predictDrawing }, "Predict drawing"),
      " ", el("button", { onclick: () => clearCanvas(canvas) }, "Clear")));
  const showKind = () => { drawing.hidden = !isDigits(datasetSelect.value); results.replaceChildren(); };
  datasetSelect.addEventListener("change", showKind);
  showKind();
  view.replaceChildren(el("h1", {}, "Predict"), el("section", {}, el("label", {}, "dataset "), datasetSelect,
    served.has(datasetSelect.value) ? "" : el("span", { class: "muted" }, " (no model serves it yet)"),
    " ", el("label", { title: "keep the files sent, so a correction can train the next model" }, keepInput, " keep inputs for retraining")),
    el("section", {}, drop), drawing, el("section", {}, el("h2", {}, "Result"), results));
}

function predictionView(p, classes = []) {
  if (p.abstained) return el("div", { class: "result" }, el("p", {}, el("strong", { class: "label" }, "abstained"), ` ${p.reason || ""} · ${p.file || ""}`));
  const saw = p.input_png ? el("figure", {}, el("img", { class: "model-input", alt: "what the model saw", src: `data:image/png;base64,${p.input_png}` }),
    el("figcaption", { class: "muted" }, "what the model saw")) : null;
  return el("div", { class: "result" }, saw, el("div", {}, el("p", {}, el("strong", { class: "label" }, p.label), ` ${pct(p.confidence)}${p.low_confidence ? " (low confidence)" : ""}${p.out_of_distribution ? " (unlike the training data)" : ""} · ${p.file || ""}`),
    el("table", {}, p.top_k.map((k) => el("tr", {}, el("td", {}, k.label), el("td", {}, pct(k.confidence))))),
    Array.isArray(p.steps) ? el("p", { class: "muted" }, `steps: ${p.steps.map((s) => (typeof s === "string" ? s : s.name || JSON.stringify(s))).join(" → ")}`) : null,
    p.prediction_id && classes.length ? feedbackControl(p, classes) : null));
}

// "wrong? say what it is": POST /v1/predictions/{id}/feedback with one of the model's classes
function feedbackControl(p, classes) {
  const select = el("select", { class: "feedback-label" }, classes.map((c) => el("option", { value: c, selected: c === p.label }, c)));
  const status = el("span", { class: "muted feedback-status" });
  const sendFeedback = async () => {
    status.textContent = "sending…";
    try {
      for (let tries = 1; ; tries++) {  // the log writes its rows in batches: a fresh answer may be a moment away
        try { await postJson(`/v1/predictions/${p.prediction_id}/feedback`, { label: select.value }); break; }
        catch (err) { if (err.status !== 404 || tries >= 10) throw err; await new Promise((r) => setTimeout(r, 300)); }
      }
      status.textContent = select.value === p.label ? "thanks: confirmed" : `thanks: noted as ${select.value}`;
    } catch (err) { status.textContent = err.message; }
  };
  return el("p", { class: "feedback" }, "wrong? say what it is ", select, " ", el("button", { class: "send-feedback", onclick: sendFeedback }, "Send"), " ", status);
}

function clearCanvas(canvas) {
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
}

function setupCanvas(canvas) {
  clearCanvas(canvas);
  const ctx = canvas.getContext("2d");
  let drawing = false;
  const at = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...at(e)); });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    Object.assign(ctx, { lineWidth: 18, lineCap: "round", lineJoin: "round", strokeStyle: "#000" });
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  for (const end of ["pointerup", "pointerleave"]) canvas.addEventListener(end, () => (drawing = false));
}

// ---- sweeps: list, leaderboard (live), cancel -------------------------------------------------

const countsText = (counts) => Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");

async function sweepsPage() {
  const sweeps = await api("/v1/sweeps");
  view.replaceChildren(el("h1", {}, "Sweeps"), sweeps.data.length ? el("table", {},
    el("tr", {}, ["sweep", "model / dataset", "status", "trials", "best"].map((h) => el("th", {}, h))),
    sweeps.data.map((s) => el("tr", { "data-sweep": s.id },
      el("td", {}, s.name ? el("div", {}, s.name) : "", idView(s.id, `#/sweeps/${s.id}`)),
      el("td", {}, `${s.model} / ${s.dataset}`), el("td", {}, el("span", { class: `status ${s.status}` }, s.status)),
      el("td", {}, `${s.total}: ${countsText(s.counts)}`),
      el("td", {}, s.best ? `${s.metric} ${num(s.best.metric)}` : "–")))) :
    el("p", {}, "No sweep yet."), el("section", { id: "new-sweep" }, el("h2", {}, "New sweep"), el("p", {}, "Loading the catalog…")));
  sweepForm(document.getElementById("new-sweep")).catch((err) => document.getElementById("new-sweep").append(errorBox(err)));
}

// "0.1, 0.01" or "[64], [128, 64]" → the values one searched hyperparameter takes (JSON where it parses)
function parseValues(text) {
  if (!text.trim()) return [];
  try { return JSON.parse(`[${text}]`); } catch { return text.split(",").map((v) => v.trim()).filter(Boolean); }
}

// A grid sweep from the catalog: rows of (hyperparameter, values), fixed values as JSON; the API's 422
// (e.g. search.grid.lr out of range) appears beside the row it names.
async function sweepForm(section) {
  const models = (await api("/v1/catalog")).models;
  const modelSelect = el("select", { name: "model", id: "sweep-model" }, models.map((m) => el("option", { value: m.name }, m.name)));
  const datasetSelect = el("select", { name: "dataset", id: "sweep-dataset" });
  const nameInput = el("input", { name: "name", placeholder: "optional label" });
  const parallel = el("input", { type: "number", name: "max_parallel", min: 1, max: 256, value: 2 });
  const fixed = el("input", { id: "sweep-fixed", placeholder: '{"epochs": 3}', size: 40 });
  const grid = el("div", { class: "fields", id: "sweep-grid" });
  const message = el("p", { class: "error" });
  const current = () => models.find((m) => m.name === modelSelect.value);
  const addRow = (wanted) => {
    const names = Object.keys(current().hyperparameters_schema.properties);
    const select = el("select", { class: "grid-name" }, names.map((n) => el("option", { value: n, selected: n === wanted }, n)));
    const row = el("div", { class: "field" }, select, el("input", { class: "grid-values", placeholder: "0.1, 0.01" }), el("div", { class: "error" }));
    const name = () => row.setAttribute("data-field", `search.grid.${select.value}`);
    select.addEventListener("change", name);
    name();
    grid.append(row);
  };
  const reset = () => {
    datasetSelect.replaceChildren(...current().datasets.map((d) => el("option", { value: d }, d)));
    grid.replaceChildren();
    addRow("lr");
  };
  modelSelect.addEventListener("change", reset);
  reset();
  const form = el("form", { id: "sweep-form", novalidate: true, onsubmit: async (event) => {
    event.preventDefault();
    form.querySelectorAll(".field .error").forEach((e) => (e.textContent = ""));
    message.textContent = "";
    const search = {};
    for (const row of grid.children) {
      const values = parseValues(row.querySelector(".grid-values").value);
      if (values.length) search[row.querySelector(".grid-name").value] = values;
    }
    let hyperparameters;
    try { hyperparameters = JSON.parse(fixed.value.trim() || "{}"); } catch { message.textContent = "fixed hyperparameters: not JSON"; return; }
    try {
      const sweep = await postJson("/v1/sweeps", { model: modelSelect.value, dataset: datasetSelect.value, name: nameInput.value || null,
        hyperparameters, search: { grid: search }, max_parallel: Number(parallel.value) || 1 });
      location.hash = `#/sweeps/${sweep.id}`;
    } catch (err) { showFieldErrors(form, err, message); }
  } },
  el("div", { class: "fields" }, el("div", { class: "field" }, el("label", {}, "model"), modelSelect),
    el("div", { class: "field" }, el("label", {}, "dataset"), datasetSelect),
    el("div", { class: "field" }, el("label", {}, "name"), nameInput),
    el("div", { class: "field" }, el("label", {}, "trials at once"), parallel)),
  el("h2", {}, "Searched (values separated by commas: every combination is a trial)"), grid,
  el("p", {}, el("button", { type: "button", id: "sweep-add-row", onclick: () => addRow() }, "Search another hyperparameter")),
  el("div", { class: "field", "data-field": "hyperparameters" }, el("label", {}, "fixed hyperparameters (JSON; the rest are the dataset's defaults)"), fixed),
  message, el("button", { type: "submit" }, "Start sweep"));
  section.replaceChildren(el("h2", {}, "New sweep"), form);
}

async function sweepPage(sweepId) {
  const box = el("div");
  const plot = el("img", { class: "plot", alt: "leaderboard" });
  const render = (s) => { showImage(plot, `/v1/sweeps/${sweepId}/plots/leaderboard.png`); box.replaceChildren(
    el("h1", {}, `Sweep ${s.name || ""} `, el("span", { class: `status ${s.status}` }, s.status)), el("p", {}, "id ", idView(s.id)),
    el("p", {}, `${s.model} / ${s.dataset} · ${s.total} trials (${countsText(s.counts)}) · ranked by ${s.metric} (${s.mode})`,
      s.early_stopping ? " · ASHA" : "", s.best_model_id ? ` · best registered as model ${s.best_model_id}` : ""),
    ["queued", "running"].includes(s.status) ? el("button", { onclick: () => cancelSweep(s.id) }, "Cancel sweep") : "",
    el("table", {}, el("tr", {}, ["rank", "trial", "job", "hyperparameters", s.metric, "epoch", "status"].map((h) => el("th", {}, h))),
      s.trials.map((t, i) => el("tr", { class: t.job_id === (s.best && s.best.job_id) ? "serving" : "" },
        el("td", {}, i + 1), el("td", {}, t.trial), el("td", {}, t.job_id ? idView(t.job_id, `#/jobs/${t.job_id}`) : "waiting"),
        el("td", {}, JSON.stringify(t.hyperparameters)), el("td", {}, num(t.metric)), el("td", {}, t.epoch ?? "–"),
        el("td", {}, el("span", { class: `status ${t.status}` }, t.reused_from ? `${t.status} (reused)` : t.status))))),
    el("section", {}, plot)); };
  render(await api(`/v1/sweeps/${sweepId}`));
  view.replaceChildren(box);
  // each event re-reads the sweep: the leaderboard is SQL's, the stream only says when to look
  streamEvents(`/v1/sweeps/${sweepId}/events`, async () => render(await api(`/v1/sweeps/${sweepId}`)),
    pageAbort.signal).catch(() => {});
}

async function cancelSweep(sweepId) {
  try { await api(`/v1/sweeps/${sweepId}/cancel`, { method: "POST" }); } catch (err) { alert(err.message); }
  route();
}

// ---- router ------------------------------------------------------------------------------------

// Without a key (or with a refused one) the page says what is needed and where the first start saved it.
function keyPrompt(refused) {
  const input = el("input", { id: "key-prompt", type: "password", placeholder: "ts_…", autocomplete: "off", size: 50 });
  const save = (e) => { e.preventDefault(); saveKey(input.value); };
  view.replaceChildren(el("section", { id: "key-needed" },
    el("h1", {}, refused ? "This API key was refused" : "An API key is required"),
    el("p", {}, refused ? "The server does not know this key, or it was revoked. Paste a live one."
      : "Every request to trainserve carries an API key. The dashboard keeps yours in this browser only."),
    el("p", {}, "The first ", el("code", {}, "make run"), " printed an admin key in its closing box and saved it in ",
      el("code", {}, "~/.config/trainserve/config.toml"), " on the machine that runs the service; ",
      el("code", {}, "trainserve env"), " prints it there, and ", el("code", {}, "trainserve keys create NAME"), " makes more."),
    el("form", { onsubmit: save }, input, " ", el("button", { type: "submit" }, "Use this key"))));
  input.focus();
}

function saveKey(value) {
  const key = value.trim();
  if (key) localStorage.setItem(KEY, key); else localStorage.removeItem(KEY);
  document.getElementById("api-key").value = key;
  route();
}

async function route() {
  pageAbort.abort();
  pageAbort = new AbortController();
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const job = path.match(/^\/jobs\/([\w-]+)$/);
  const sweep = path.match(/^\/sweeps\/([\w-]+)$/);
  if (!localStorage.getItem(KEY)) return keyPrompt(false);
  try {
    if (job) await jobPage(job[1]);
    else if (sweep) await sweepPage(sweep[1]);
    else if (path === "/sweeps") await sweepsPage();
    else if (path === "/compare") await comparePage(params);
    else if (path === "/models") await modelsPage(params);
    else if (path === "/predict") await predictPage(params);
    else await jobsPage();
  } catch (err) {
    if (err.status === 401) return keyPrompt(true);
    view.replaceChildren(el("h1", {}, err.status === 403 ? "Not allowed with this key" : "The page could not load"), errorBox(err));
  }
}

document.getElementById("api-key").value = localStorage.getItem(KEY) || "";
document.getElementById("key-form").addEventListener("submit", (e) => { e.preventDefault(); saveKey(document.getElementById("api-key").value); });
window.addEventListener("hashchange", route);
route();
