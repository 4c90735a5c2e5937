// Berth portal core: the token, API calls, the engine picker, errors as the API wrote them.
// Everything here is an ordinary call of the public API with the pasted bearer token.
"use strict";
const Berth = (window.Berth = { me: null, engine: null, views: {} });
const KEY = "berth.token"; // sessionStorage only: never a cookie, never the URL

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}
Berth.ApiError = ApiError;

Berth.token = () => sessionStorage.getItem(KEY) || "";

Berth.url = (path, params = {}) => {
  const query = new URLSearchParams();
  if (Berth.engine) query.set("engine", Berth.engine);
  for (const [k, v] of Object.entries(params)) {
    for (const item of [].concat(v)) query.append(k, String(item));
  }
  const text = query.toString();
  return path + (text ? (path.includes("?") ? "&" : "?") + text : "");
};

Berth.headers = (extra = {}) => ({ Authorization: `Bearer ${Berth.token()}`, ...extra });

async function problemOf(response) {
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    return { status: response.status, title: response.statusText, detail: text };
  }
}
Berth.problemOf = problemOf;

// One API call: JSON in, JSON out; a problem document becomes an ApiError.
Berth.api = async (method, path, { body, params, engine = true } = {}) => {
  const headers = Berth.headers({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const url = engine ? Berth.url(path, params) : path;
  const response = await fetch(url, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(response.status, await problemOf(response));
  return response.status === 204 ? null : response.json();
};

Berth.can = (scope) => !!Berth.me && (Berth.me.scopes.includes("admin") || Berth.me.scopes.includes(scope));

// The API's problem document, shown as written.
Berth.showError = (error) => {
  const box = document.getElementById("error");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  const p = error.problem || { title: "Error", detail: String(error.message || error) };
  const lines = [`${p.status || ""} ${p.code || ""} ${p.title || ""}`.trim(), p.detail || ""];
  for (const c of p.containers || []) lines.push(`  container ${c.name || c.id} (${c.state})`);
  if (p.errors) lines.push(JSON.stringify(p.errors));
  box.textContent = lines.filter(Boolean).join("\n");
  box.hidden = false;
};

Berth.bytes = (n) => {
  if (n === null || n === undefined) return "…";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};

Berth.el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k in node) node[k] = v;
    else node.setAttribute(k, v);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
};

async function signIn(token) {
  sessionStorage.setItem(KEY, token);
  try {
    Berth.me = await Berth.api("GET", "/v1/token", { engine: false });
  } catch (error) {
    sessionStorage.removeItem(KEY);
    Berth.showError(error);
    return;
  }
  Berth.showError(null);
  document.getElementById("signin").hidden = true;
  document.getElementById("whoami").hidden = false;
  document.getElementById("who").textContent = `${Berth.me.name} · ${Berth.me.scopes.join(", ")}`;
  const picker = document.getElementById("engine");
  picker.replaceChildren(...Berth.me.usable_engines.map((name) => Berth.el("option", { value: name }, name)));
  Berth.engine = Berth.me.default_engine || Berth.me.usable_engines[0] || null;
  if (Berth.engine) picker.value = Berth.engine;
  picker.disabled = Berth.me.usable_engines.length < 2;
  for (const node of document.querySelectorAll(".needs-write")) node.hidden = !Berth.can("write");
  for (const node of document.querySelectorAll(".needs-delete")) node.hidden = !Berth.can("delete");
  document.getElementById("main").hidden = false;
  Berth.refresh();
  Berth.pollJobs();
  followEvents();
}

// Live updates from GET /v1/events (NDJSON) when this Berth has it and the token may read:
// an image event of the chosen engine reloads the table and pictures, a job event the jobs list.
// Without it (or when the worker's stream slots are taken) the jobs list is polled only.
async function followEvents() {
  if (!Berth.can("read")) return;
  if (Berth.hasEvents === undefined) {
    const spec = await fetch("/openapi.json").then((r) => r.json(), () => ({}));
    Berth.hasEvents = !!spec.paths?.["/v1/events"];
  }
  if (!Berth.hasEvents) return;
  let reload = null;
  try {
    const response = await fetch("/v1/events", { headers: Berth.headers({ Accept: "application/x-ndjson" }) });
    if (!response.ok) return;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (const line of lines) {
        let event;
        try { event = JSON.parse(line); } catch { continue; } // keep-alive lines
        if (event.type === "job") Berth.pollJobs();
        if (event.type === "image" && event.engine === Berth.engine) {
          clearTimeout(reload);
          reload = setTimeout(Berth.refresh, 1000);
        }
      }
    }
  } catch {
    // the stream broke (Berth restarted, network): follow again below
  }
  if (Berth.me) setTimeout(followEvents, 5000);
}

Berth.refresh = () => {
  for (const view of Object.values(Berth.views)) view.refresh?.();
};

// Jobs: polled while the tab is visible, with progress bars and cancel.
Berth.pollJobs = async () => {
  clearTimeout(Berth.jobsTimer);
  if (!Berth.me) return;
  if (document.visibilityState === "visible") {
    try {
      const { jobs } = await Berth.api("GET", "/v1/jobs", { engine: false, params: { limit: 20 } });
      renderJobs(jobs);
    } catch (error) {
      Berth.showError(error);
    }
  }
  Berth.jobsTimer = setTimeout(Berth.pollJobs, 3000);
};

function renderJobs(jobs) {
  const rows = jobs.map((job) => {
    const p = job.progress || {};
    const done = job.state === "succeeded";
    const bar = Berth.el("progress", { max: p.total || 1, value: done ? p.total || 1 : p.current || 0 });
    const live = job.state === "queued" || job.state === "running";
    const cancel = live
      ? Berth.el("button", {
          type: "button",
          onclick: () => Berth.api("DELETE", `/v1/jobs/${job.id}`, { engine: false })
            .then(Berth.pollJobs, Berth.showError),
        }, "Cancel")
      : "";
    const state = job.error ? `${job.state}: ${job.error.detail || job.error.title}` : job.state;
    return Berth.el("tr", {}, Berth.el("td", {}, job.kind), Berth.el("td", {}, job.target || ""),
      Berth.el("td", {}, state), Berth.el("td", {}, bar), Berth.el("td", {}, cancel));
  });
  document.querySelector("#jobs tbody").replaceChildren(...rows);
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("signin").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.getElementById("token");
    signIn(input.value.trim());
    input.value = "";
  });
  document.getElementById("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    location.reload();
  });
  document.getElementById("engine").addEventListener("change", (event) => {
    Berth.engine = event.target.value;
    Berth.refresh();
  });
  document.addEventListener("visibilitychange", Berth.pollJobs);
  if (Berth.token()) signIn(Berth.token());
});
