"use strict";
/* The overview page: segment map (click a point for that user), live feed of ingested events, model health. */

const { api, el, failure, formatNumber, formatTime, message, table, userLink, PALETTE } = Dash;

const FEED_ROWS = 100;
let feedCursor = 0;

function drawMap(canvas, points) {
  const context = canvas.getContext("2d");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  context.scale(ratio, ratio);
  // Robust bounds (2nd to 98th percentile) so a few outlying users do not squash everyone else into a corner.
  const bound = (values, q) => [...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))];
  const [x0, x1, y0, y1] = [bound(points.x, 0.02), bound(points.x, 0.98), bound(points.y, 0.02), bound(points.y, 0.98)];
  const pad = 16;
  const sx = (x) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y) => height - pad - ((y - y0) / (y1 - y0 || 1)) * (height - 2 * pad);
  const screen = points.x.map((x, i) => [Math.min(Math.max(sx(x), 2), width - 2), Math.min(Math.max(sy(points.y[i]), 2), height - 2)]);
  context.clearRect(0, 0, width, height);
  context.globalAlpha = 0.7;
  screen.forEach(([x, y], i) => {
    context.fillStyle = PALETTE[points.segment[i] % PALETTE.length];
    context.beginPath();
    context.arc(x, y, 3, 0, 2 * Math.PI);
    context.fill();
  });
  return screen;
}

function nearest(screen, x, y) {
  let best = -1, distance = 64;  // within 8 px
  screen.forEach(([px, py], i) => {
    const d = (px - x) ** 2 + (py - y) ** 2;
    if (d < distance) { best = i; distance = d; }
  });
  return best;
}

async function loadSegments() {
  const note = document.getElementById("segments-note");
  const answer = await api("/dashboard/api/segments");
  if (!answer.ok) {
    note.replaceWith(failure(answer, "Segments"));
    return;
  }
  const { points, segments } = answer.body;
  note.textContent = answer.body.note || "";
  if (!points.user_id || !points.user_id.length) return;
  const names = Object.fromEntries(segments.map((s) => [s.segment, s.name]));
  const canvas = document.getElementById("map");
  let screen = drawMap(canvas, points);
  window.addEventListener("resize", () => { screen = drawMap(canvas, points); });
  const tooltip = document.getElementById("tooltip");
  canvas.addEventListener("mousemove", (event) => {
    const box = canvas.getBoundingClientRect();
    const i = nearest(screen, event.clientX - box.left, event.clientY - box.top);
    tooltip.hidden = i < 0;
    if (i >= 0) {
      tooltip.textContent = `${points.user_id[i]} · ${names[points.segment[i]]}`;
      tooltip.style.left = `${event.clientX + 12}px`;
      tooltip.style.top = `${event.clientY + 12}px`;
    }
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const i = nearest(screen, event.clientX - box.left, event.clientY - box.top);
    if (i >= 0) window.location.href = `/dashboard/user?id=${encodeURIComponent(points.user_id[i])}`;
  });
  document.getElementById("legend").append(...segments.map((s) =>
    el("span", {}, el("i", { style: `background:${PALETTE[s.segment % PALETTE.length]}` }), `${s.name} (${formatNumber(s.users)})`)));
  const columns = ["name", "users", "user_share", "value_share", "purchases_per_user", "median_recency_days", "churn_risk", "description"];
  document.getElementById("segment-table").append(table(segments, columns.filter((c) => c in (segments[0] || {}))));
}

async function pollFeed() {
  const answer = await api(`/dashboard/api/feed?after=${feedCursor}`);
  const body = document.querySelector("#feed-table tbody");
  if (!answer.ok) {
    document.getElementById("feed").append(failure(answer, "Live feed"));
    return;  // no retry loop on a missing key: the page says what is needed
  }
  feedCursor = answer.body.cursor;
  if (answer.body.events.length) refreshHealth();  // the event counters changed: show them now
  for (const event of answer.body.events) {
    body.prepend(el("tr", { className: "fresh" }, el("td", { text: formatTime(event.received_at) }),
      el("td", {}, userLink(String(event.user_id))), el("td", { text: event.event_type || "view" }),
      el("td", { text: event.item_id ?? "" }), el("td", { text: formatTime(event.timestamp) })));
  }
  while (body.rows.length > FEED_ROWS) body.deleteRow(-1);
  setTimeout(() => {
    body.querySelectorAll("tr.fresh").forEach((row) => row.classList.remove("fresh"));
    pollFeed();
  }, 2000);
}

function healthFacts(health) {
  const training = health.training || {};
  const feed = health.feed || {};
  const events = health.events || {};
  const lastEvent = health.last_event ? formatTime(health.last_event) : "–";
  return {
    status: health.status, bundle: health.bundle, "model created": health.created, "last event in the bundle": lastEvent,
    "next-item NDCG@10 (validation)": training["valid_ndcg@10"] ?? "–", "best epoch": training.best_epoch ?? "–",
    uptime: `${formatNumber(health.uptime_s)} s`, "events stored / duplicate / rejected":
      `${events.stored || 0} / ${events.duplicate || 0} / ${events.rejected || 0}`,
    "users with ingested events": health.users_with_ingested_events,
    "recent ingested items unknown to the bundle": feed.unknown_item_share === null || feed.unknown_item_share === undefined
      ? "–" : `${(100 * feed.unknown_item_share).toFixed(1)}%`,
    "requests shed (503)": health.shed, reloads: health.reloads,
  };
}

/** Redraws the health panel; false when the service refused (no retry then: the panel says what is needed). */
async function refreshHealth() {
  const answer = await api("/dashboard/api/health");
  const facts = document.getElementById("health-facts");
  facts.replaceChildren();
  if (!answer.ok) {
    facts.append(failure(answer, "Model health"));
    return false;
  }
  const health = answer.body;
  facts.append(Dash.render(healthFacts(health)));
  const tasks = Object.entries(health.tasks || {}).map(([task, metrics]) => ({ task, ...metrics }));
  document.getElementById("health-tasks").replaceChildren(tasks.length
    ? table(tasks, ["task", "model", "auc", "pr_auc", "logloss", "ece"]) : message("missing", "This bundle has no task models."));
  document.getElementById("health-requests").replaceChildren(table(health.requests,
    ["method", "route", "requests", "server_errors", "mean_ms", "p95_ms"]));
  return true;
}

async function pollHealth() {
  if (await refreshHealth()) setTimeout(pollHealth, 5000);
}

Dash.header().then(() => {
  loadSegments();
  pollFeed();
  pollHealth();
});
