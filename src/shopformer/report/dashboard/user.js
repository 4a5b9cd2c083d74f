"use strict";
/* The user page: search a user, then their event timeline (live), profile, predictions, recommendations
   and explanations. Endpoints this service lacks (as /dashboard/api/info says) are named, never called. */

const { api, el, failure, formatTime, message, render, table } = Dash;

let info = { endpoints: {} };
let current = null;
let shownTimeline = "";

function panel(id) {
  return document.querySelector(`#${id} .body`);
}

function fill(id, ...nodes) {
  panel(id).replaceChildren(...nodes);
}

async function suggest(prefix) {
  const answer = await api(`/dashboard/api/users?q=${encodeURIComponent(prefix)}&limit=20`);
  if (!answer.ok) return;
  document.getElementById("user-suggestions").replaceChildren(...answer.body.users.map((u) => el("option", { value: u })));
}

function timelineTable(events) {
  const rows = events.map((e) => el("tr", { className: e.source },
    el("td", { text: formatTime(e.timestamp) }), el("td", { text: e.event_type || "" }), el("td", { text: e.item_id ?? "" }),
    el("td", { text: e.category || "" }), el("td", { className: `source-${e.source}`, text: e.source })));
  const head = el("tr", {}, ["time (UTC)", "event", "item", "category", "source"].map((h) => el("th", { text: h })));
  return el("table", { id: "timeline-table" }, el("thead", {}, head), el("tbody", {}, rows));
}

async function loadTimeline(userId) {
  const answer = await api(`/dashboard/api/users/${encodeURIComponent(userId)}/timeline?limit=300`);
  if (userId !== current) return null;
  if (!answer.ok) {
    fill("timeline", failure(answer, "Timeline"));
    return null;
  }
  const { events, n_events: count } = answer.body;
  const signature = `${count}:${events.length ? JSON.stringify(events[0]) : ""}`;
  if (signature !== shownTimeline) {  // redraw only when something arrived, so scrolling is not reset every 3 s
    shownTimeline = signature;
    fill("timeline", count ? timelineTable(events) : message("missing", "No events: neither the bundle nor the service knows this user."));
  }
  return answer.body;
}

function probabilityBars(predictions) {
  const rows = Object.entries(predictions).map(([task, value]) => {
    if (typeof value !== "number") return el("tr", {}, el("td", { text: task }), el("td", { colspan: 2 }, render(value)));
    return el("tr", {}, el("td", { text: task }), el("td", {}, el("div", { className: "bar" }, el("div", { style: `width:${(100 * value).toFixed(1)}%` }))),
      el("td", { className: "number", text: `${(100 * value).toFixed(1)}%` }));
  });
  return el("table", {}, el("tbody", {}, rows));
}

/** Fills the panel `name` from the optional endpoint `name` at `path`, or says the service lacks it. */
async function loadOptional(userId, name, path, draw) {
  if (!info.endpoints[name]) {
    fill(name, message("missing", `This service has no ${name} endpoint${name === "predictions" ? " (the bundle has no task models)" : ""}.`));
    return;
  }
  fill(name, message("note", "Loading…"));
  const answer = await api(path);
  if (userId !== current) return;  // another user was asked for meanwhile
  fill(name, answer.ok ? draw(answer.body) : failure(answer, name[0].toUpperCase() + name.slice(1)));
}

/** A profile without the ids and the raw user vector (dozens of floats, which say nothing on a page). */
function profileView(body) {
  const { user_id: _, user_vector: vector, ...profile } = body.profile || {};
  if (vector) profile.user_vector = `${vector.length} numbers (the model's state after this user's history)`;
  return render(profile);
}

/** One explanation document (`predict.explain`): its sentence, its most influential events, its groups. */
function explanationDocument(document) {
  if (!document || typeof document !== "object" || !document.sentence) return render(document);
  const events = (document.events || []).map(({ position: _, ...e }) => e);
  return el("div", {}, el("p", { text: document.sentence }),
    events.length ? table(events, ["timestamp", "event_type", "item_id", "category", "weight"]) : "",
    document.groups && document.groups.length ? table(document.groups) : "");
}

function explanationView(body) {
  const { user_id: _, model_version: __, ...rest } = body;
  const documents = rest.explanations ?? rest.explanation ?? (rest.sentence ? rest : null);
  if (documents === null) return render(rest);
  return el("div", {}, (Array.isArray(documents) ? documents : [documents]).map(explanationDocument));
}

async function show(userId) {
  current = userId;
  shownTimeline = "";
  document.getElementById("user-input").value = userId;
  history.replaceState(null, "", `/dashboard/user?id=${encodeURIComponent(userId)}`);
  document.getElementById("user-note").textContent = `User ${userId}`;
  const timeline = await loadTimeline(userId);
  const id = encodeURIComponent(userId);
  if (!timeline || !timeline.n_events) {
    for (const section of ["profile", "predictions", "recommendations", "explanations"]) fill(section, message("missing", "No events for this user."));
    return;
  }
  loadOptional(userId, "profile", `/v1/users/${id}/profile`, profileView);
  loadOptional(userId, "predictions", `/v1/users/${id}/predictions`, (body) => probabilityBars(body.predictions));
  loadOptional(userId, "recommendations", `/v1/users/${id}/recommendations?k=10`,
    (body) => el("div", {}, message("note", `source: ${body.source}`), table(body.items, ["rank", "item_id", "score"])));
  loadOptional(userId, "explanations", `/v1/users/${id}/explanations`, explanationView);
}

function refreshTimeline() {
  if (current !== null) loadTimeline(current);
  setTimeout(refreshTimeline, 3000);
}

Dash.header().then((answer) => {
  info = answer;
  const input = document.getElementById("user-input");
  let pending = null;
  input.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(() => suggest(input.value.trim()), 200);
  });
  document.getElementById("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value.trim()) show(input.value.trim());
  });
  const requested = new URLSearchParams(window.location.search).get("id");
  if (requested) show(requested);
  suggest("");
  refreshTimeline();
});
