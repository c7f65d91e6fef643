// fakescope serve: the page. Every value from the server or a file name is set with textContent.
"use strict";
const $ = (id) => document.getElementById(id);
let models = {};
let shown = null;
const polling = new Set();

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (!r.ok) throw new Error((body && body.detail) || (r.status + " " + r.statusText));
  return body;
}

// fakescope detect's advice names its command-line flags; the page names its own controls instead.
const PAGE_ADVICE = [
  [/score it with --aligned \(aligned=True\) instead/g, "tick \u201calready an aligned face crop\u201d and upload it again"],
  [/pass --aligned if the image is already a face crop/g, "if the image is already a face crop, tick \u201calready an aligned face crop\u201d and upload it again"],
  [/--aligned( \(aligned=True\))?/g, "the \u201calready an aligned face crop\u201d box"],
];
const UNFAMILIAR = "unfamiliar input: images like this were not in training; treat the score with caution";

function forPage(text) {
  let out = String(text);
  for (const [from, to] of PAGE_ADVICE) out = out.replace(from, to);
  return out;
}

// "NAME: reason", naming the file once whether or not the server's reason already starts with it.
function aboutFile(name, text) {
  return text.startsWith(name + ": ") ? text : name + ": " + text;
}

function message(text, isError) {
  const p = el("p", text, isError ? "error" : "muted");
  $("messages").prepend(p);
  while ($("messages").children.length > 5) $("messages").lastChild.remove();
}

async function loadModels() {
  const doc = await api("/v1/models");
  const sel = $("model");
  sel.replaceChildren();
  for (const m of doc.models) {
    models[m.name] = m;
    const o = el("option", m.name + " (" + m.detector + (m.standin ? ", STAND-IN DATA" : "") + ")");
    o.value = m.name;
    sel.append(o);
  }
  showModel();
}

function showModel() {
  const m = models[$("model").value];
  if (!m) return;
  $("model-info").textContent = m.detector + " · threshold " + m.threshold.toFixed(3) + " (" +
    m.threshold_source + ") · trained on " + m.training_data.join(", ");
  $("standin").hidden = !m.standin;
  $("standin").textContent = m.standin ? m.notice : "";
  $("card-part").hidden = !m.card;
  $("card-link").href = m.card ? "/v1/models/" + encodeURIComponent(m.name) + "/card" : "";
}

async function submit(file) {
  const form = new FormData();
  form.append("file", file, file.name);
  form.append("model", $("model").value);
  form.append("aligned", $("aligned").checked ? "true" : "false");
  try {
    const job = await api("/v1/jobs", { method: "POST", body: form });
    message(file.name + ": queued as " + job.kind);
    show(job.id);
    poll(job.id);
  } catch (err) {
    message(aboutFile(file.name, err.message), true);
  }
  refreshHistory();
}

// The calibrated P(fake) of a result: its own, or its one face's; null for a run without calibration.
function calibrated(res) {
  if (typeof res.probability === "number") return res.probability;
  const faces = res.faces || [];
  return faces.length === 1 && typeof faces[0].probability === "number" ? faces[0].probability : null;
}

function verdictOf(job) {
  const res = job.result && job.result.results && job.result.results[0];
  const box = el("div");
  if (!res) return box;
  const label = res.label || "none";
  const prob = calibrated(res);
  const raw = res.score === null ? "—" : res.score.toFixed(3);
  const v = el("span", label.toUpperCase() + " · P(fake) = " + (prob === null ? raw : prob.toFixed(3) + " (calibrated)"),
    "verdict " + label + (job.standin ? " standin-label" : ""));
  v.id = "verdict-label";
  v.dataset.score = res.score;
  v.dataset.label = res.label;
  box.append(v);
  if (job.standin) box.append(el("span", "stand-in model: not a real verdict", "tag"));
  const unfamiliar = (res.faces || []).filter((f) => f.familiarity && f.familiarity.unfamiliar).length;
  if (unfamiliar) {
    const c = el("span", UNFAMILIAR + (res.faces.length > 1 ? " (" + unfamiliar + " of " + res.faces.length + " faces)" : ""), "caution");
    c.id = "familiarity";
    box.append(c);
  }
  box.append(el("div", (prob === null ? "" : "score " + raw + " · ") + "threshold " + res.threshold.toFixed(3) +
    " (" + res.threshold_source + ") · " + res.kind + " · " + res.faces.length + " face(s)" +
    (res.note ? " · note: " + forPage(res.note) : ""), "muted"));
  return box;
}

function render(job) {
  if (job.id !== shown) return;
  $("current").hidden = false;
  $("current-name").textContent = job.filename + " — " + job.status;
  const p = job.progress;
  let pct = job.status === "done" || job.status === "failed" ? 100 : 0;
  if (job.status === "running" && p.frames_total > 0) pct = Math.round(100 * p.frames_done / p.frames_total);
  $("bar").style.width = pct + "%";
  $("progress-text").textContent = job.kind === "video" && p.frames_total > 0
    ? "frames " + p.frames_done + " / " + p.frames_total : (job.status === "queued" ? "waiting in the queue" : "");
  $("verdict").replaceChildren(verdictOf(job));
  $("current-error").textContent = job.error ? forPage(job.error) : "";
  const finished = job.status === "done" || job.status === "failed";
  $("current-links").hidden = !finished;
  $("json-link").href = "/v1/jobs/" + job.id + "/result.json";
  $("report-part").hidden = !job.report;
  if (job.report) {
    $("report-link").href = job.report;
    if ($("report").dataset.job !== job.id) {
      $("report").dataset.job = job.id;
      $("report").src = job.report;
    }
    $("report").hidden = false;
  } else {
    $("report").hidden = true;
  }
}

async function show(id) {
  shown = id;
  $("report").dataset.job = "";
  try { render(await api("/v1/jobs/" + id)); } catch (err) { message(err.message, true); }
}

async function poll(id) {
  if (polling.has(id)) return;
  polling.add(id);
  try {
    for (;;) {
      const job = await api("/v1/jobs/" + id);
      render(job);
      if (job.status === "done" || job.status === "failed") break;
      await new Promise((r) => setTimeout(r, 400));
    }
  } catch (err) {
    message(err.message, true);
  }
  polling.delete(id);
  refreshHistory();
}

// The report (same origin, no script of its own) takes the height of what it holds: no inner scroll bar.
function fitReport() {
  const frame = $("report");
  const doc = frame.contentDocument;
  if (frame.hidden || !doc || !doc.documentElement) return;
  frame.style.height = "0px";  // measured from nothing, so a shorter report shrinks the frame
  frame.style.height = Math.ceil(doc.documentElement.scrollHeight) + "px";
}

async function refreshHistory() {
  let doc;
  try { doc = await api("/v1/jobs?limit=50"); } catch (err) { return; }
  if (!doc.jobs.length) {
    const td = el("td", "No jobs yet: drop an image or a video above.", "muted");
    td.colSpan = 7;
    const tr = el("tr", undefined, "empty");
    tr.append(td);
    $("jobs").replaceChildren(tr);
    return;
  }
  const rows = doc.jobs.map((job) => {
    const res = job.result && job.result.results && job.result.results[0];
    const tr = el("tr");
    tr.dataset.job = job.id;
    const when = new Date(job.created * 1000).toLocaleString();
    tr.title = when + " · " + job.model;  // the columns a narrow screen hides
    const label = el("td", res ? res.label + (job.standin ? " (stand-in)" : "") : "");
    const prob = res ? calibrated(res) : null;
    const score = prob !== null ? prob.toFixed(3) : (res && res.score !== null ? res.score.toFixed(3) : "");
    tr.append(el("td", when, "when"), el("td", job.filename, "file"), el("td", job.model, "model"),
      el("td", job.status), el("td", score), label);
    const dl = el("td");
    if (job.result) {
      const a = el("a", "JSON");
      a.href = "/v1/jobs/" + job.id + "/result.json";
      a.setAttribute("download", "");
      a.addEventListener("click", (e) => e.stopPropagation());
      dl.append(a);
    }
    tr.append(dl);
    tr.addEventListener("click", () => { show(job.id); if (job.status === "queued" || job.status === "running") poll(job.id); });
    return tr;
  });
  $("jobs").replaceChildren(...rows);
}

function setupDrop() {
  const drop = $("drop");
  ["dragenter", "dragover"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); }));
  ["dragleave", "drop"].forEach((t) => drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.remove("over"); }));
  drop.addEventListener("drop", (e) => { for (const f of e.dataTransfer.files) submit(f); });
  $("file").addEventListener("change", (e) => { for (const f of e.target.files) submit(f); e.target.value = ""; });
  $("model").addEventListener("change", showModel);
  $("report").addEventListener("load", fitReport);
  window.addEventListener("resize", fitReport);
}

setupDrop();
loadModels().then(refreshHistory).catch((err) => message(err.message, true));
setInterval(refreshHistory, 5000);
