"use strict";
/* What both dashboard pages share: API calls with the user's key, DOM building, a renderer for any JSON.
   Data from the service only ever reaches the page as text nodes (never as HTML): ids are the shop's data. */

const Dash = (() => {
  const KEY_NAME = "shopformer-api-key";
  const PALETTE = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"];

  function apiKey() {
    return sessionStorage.getItem(KEY_NAME) || "";
  }

  /** GET (or `method` with a `json` body) against the service: resolves to {ok, status, body}, never throws on HTTP errors. */
  async function api(path, options = {}) {
    const headers = {};
    if (apiKey()) headers["X-API-Key"] = apiKey();
    const init = { method: options.method || "GET", headers };
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(options.json);
    }
    try {
      const response = await fetch(path, init);
      const body = await response.json().catch(() => null);
      return { ok: response.ok, status: response.status, body };
    } catch (error) {
      return { ok: false, status: 0, body: { detail: `the service did not answer (${error.message})` } };
    }
  }

  /** An element with `props` (className, text, title, href, on<event> handlers, other attributes) and children. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (name === "className") node.className = value;
      else if (name === "text") node.textContent = String(value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value);
    }
    for (const child of children.flat(Infinity)) {
      if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function formatNumber(value) {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return value.toLocaleString("en");
    return Math.abs(value) >= 100 ? value.toFixed(1) : String(Number(value.toPrecision(3)));
  }

  /** Unix seconds (or a date string, as an event was posted) as "YYYY-MM-DD HH:MM:SS" UTC. */
  function formatTime(value) {
    if (value === null || value === undefined || value === "") return "";
    const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toISOString().replace("T", " ").slice(0, 19);
  }

  function userLink(userId) {
    return el("a", { href: `/dashboard/user?id=${encodeURIComponent(userId)}`, text: userId });
  }

  /** A table of `rows` (objects) over `columns` (default: every key seen), numbers right-aligned. */
  function table(rows, columns) {
    const keys = columns || [...new Set(rows.flatMap((row) => Object.keys(row)))];
    const head = el("tr", {}, keys.map((key) => el("th", { text: key })));
    const body = rows.map((row) => el("tr", {}, keys.map((key) => {
      const value = row[key];
      return el("td", { className: typeof value === "number" && !isTime(key) ? "number" : "" }, render(value, key));
    })));
    return el("table", {}, el("thead", {}, head), el("tbody", {}, body));
  }

  /** Whether a field named `key` holds unix seconds (first_seen, timestamp, signup_time, received_at…). */
  function isTime(key) {
    return /(^timestamp$|_seen$|_time$|_at$|^cutoff$|^last_purchase$)/.test(key);
  }

  /** Any JSON value as readable DOM: objects as definition lists, lists of objects as tables. */
  function render(value, key = "") {
    if (typeof value === "number" && isTime(key)) return formatTime(value);
    if (value === null || value === undefined) return "–";
    if (typeof value === "number") return formatNumber(value);
    if (typeof value !== "object") return String(value);
    if (Array.isArray(value)) {
      if (value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) return table(value);
      return value.map((v) => (typeof v === "object" ? JSON.stringify(v) : render(v))).join(", ");
    }
    return el("dl", {}, Object.entries(value).map(([k, v]) => [el("dt", { text: k }), el("dd", {}, render(v, k))]));
  }

  function message(kind, text) {
    return el("p", { className: kind, text });
  }

  /** The reason an API answer failed, in one line (401/403 name the key and scope needed). */
  function failure(answer, what) {
    if (answer.status === 401) return message("error", `${what}: this service needs an API key (type it above).`);
    if (answer.status === 403) return message("error", `${what}: the API key lacks the scope this needs (read-personal).`);
    const detail = answer.body && (answer.body.detail || answer.body.error);
    return message("missing", `${what}: ${typeof detail === "string" ? detail : `HTTP ${answer.status}`}`);
  }

  /** Fills the header: model version, and an API-key field when the service has keys. Resolves to /dashboard/api/info. */
  async function header() {
    const answer = await api("/dashboard/api/info");
    const info = answer.ok ? answer.body : { endpoints: {}, needs_key: false, model_version: "unknown" };
    document.getElementById("version").textContent = `model ${info.model_version}`;
    if (info.needs_key) {
      const input = el("input", { type: "password", placeholder: "API key", value: apiKey() });
      input.addEventListener("change", () => {
        sessionStorage.setItem(KEY_NAME, input.value.trim());
        window.location.reload();
      });
      document.getElementById("key").append(el("label", {}, "API key ", input));
    }
    return info;
  }

  return { PALETTE, api, el, failure, formatNumber, formatTime, header, message, render, table, userLink };
})();
