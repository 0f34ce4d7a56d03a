// The engine's dashboard: the batches of one key, live. Everything comes from the engine's
// own JSON API with the key in the Authorization header; the key is kept in this tab's
// sessionStorage only (never in a URL, a cookie or a log). Text from the API only ever
// becomes text nodes (never parsed as HTML), and the page's CSP allows this origin alone.
"use strict";

(() => {
  const KEY_SLOT = "fastrouter-batch.key";
  const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);
  const FINISHED_AT = ["completed_at", "failed_at", "expired_at", "cancelled_at"];
  // Polled faster while something runs; Server-sent events cannot carry the key in a header.
  const POLL_BUSY_MS = 1000;
  const POLL_IDLE_MS = 3000;
  const PAGE = 100;

  const $ = (id) => document.getElementById(id);
  const state = { timer: 0, generation: 0, older: [], hasMore: false, shown: "", notice: "" };

  class Unauthorized extends Error {}
  class NotFound extends Error {}

  const key = () => sessionStorage.getItem(KEY_SLOT);

  async function api(path) {
    const r = await fetch(path, {
      headers: { Authorization: "Bearer " + key() },
      cache: "no-store",
      credentials: "omit",
    });
    if (r.status === 401) throw new Unauthorized();
    if (r.status === 404) throw new NotFound();
    if (!r.ok) throw new Error(await errorMessage(r));
    return r.json();
  }

  async function errorMessage(r) {
    try {
      return (await r.json()).error.message;
    } catch {
      return "HTTP " + r.status;
    }
  }

  // --- building blocks -------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") e.className = value;
      else if (name.startsWith("on")) e.addEventListener(name.slice(2), value);
      else e.setAttribute(name, value === true ? "" : String(value));
    }
    for (const c of children.flat(Infinity)) {
      if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
    }
    return e;
  }

  const fmtInt = (n) => Number(n || 0).toLocaleString();

  function time(seconds) {
    if (!seconds) return el("span", { class: "none" }, "—");
    const d = new Date(seconds * 1000);
    return el("time", { datetime: d.toISOString(), title: d.toISOString() },
      d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }));
  }

  function finishedAt(b) {
    for (const f of FINISHED_AT) if (b[f]) return b[f];
    return null;
  }

  function duration(from, to) {
    if (!from || !to) return null;
    let s = Math.max(0, to - from);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    s %= 60;
    return h ? `${h} h ${m} min` : m ? `${m} min ${s} s` : `${s} s`;
  }

  const counts = (b) => b.request_counts || { total: 0, completed: 0, failed: 0 };
  const problemCount = (b) => ((b.errors && b.errors.data) || []).length;

  function statusBadge(status) {
    return el("span", { class: "status s-" + status }, status.replace("_", " "));
  }

  // A bar of completed (green) and failed (red) lines out of the total, and the counts in
  // words (unless `bare`); `validating`, `finalizing` and a failed validation say so, since
  // their counts alone would look stuck.
  function progress(status, c, bare, problems) {
    const total = c.total || 0, done = (c.completed || 0) + (c.failed || 0);
    const pct = (n) => (total ? (100 * n) / total : 0);
    const bar = el("div", {
      class: "bar b-" + status,
      role: "progressbar",
      "aria-valuemin": 0,
      "aria-valuemax": total,
      "aria-valuenow": done,
    });
    const ok = el("span", { class: "ok" });
    const bad = el("span", { class: "bad" });
    ok.style.width = pct(c.completed) + "%";
    bad.style.width = pct(c.failed) + "%";
    bar.append(ok, bad);
    if (bare) return el("div", { class: "progress" }, bar);
    let text = `${fmtInt(c.completed)} completed · ${fmtInt(c.failed)} failed · ${fmtInt(total)} total`;
    if (status === "validating") text = "validating the input file…";
    else if (status === "failed" && !total) text = `the input file failed validation: ${fmtInt(problems)} problem${problems === 1 ? "" : "s"}`;
    else if (status === "finalizing") text = "finalizing: writing the result files · " + text;
    else if (status === "cancelling") text = "cancelling · " + text;
    return el("div", { class: "progress" }, bar, el("span", { class: "counts" }, text));
  }

  function usageText(u) {
    if (!u || !u.total_tokens) return "—";
    return `${fmtInt(u.input_tokens)} in · ${fmtInt(u.output_tokens)} out`;
  }

  function metadataList(meta) {
    const pairs = Object.entries(meta || {});
    if (!pairs.length) return el("span", { class: "none" }, "—");
    return el("ul", { class: "meta" }, pairs.map(([k, v]) => el("li", {}, el("b", {}, k), " ", v)));
  }

  function facts(pairs) {
    return el("dl", { class: "facts" }, pairs.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function table(head, rows, empty) {
    if (!rows.length) return el("p", { class: "none" }, empty);
    return el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.map((c, i) => el("td", { "data-label": head[i] }, c)))))));
  }

  // --- views -----------------------------------------------------------------------------

  function show(id) {
    for (const v of ["login", "list", "detail"]) $(v).hidden = v !== id;
    const signedIn = id !== "login";
    $("signout").hidden = !signedIn;
    $("live").hidden = !signedIn;
  }

  function showLogin(message) {
    clearTimeout(state.timer);
    state.generation++;
    sessionStorage.removeItem(KEY_SLOT);
    state.shown = "";
    $("detail").replaceChildren();
    $("batches").replaceChildren();
    show("login");
    const err = $("login-error");
    err.hidden = !message;
    err.textContent = message || "";
    $("key").value = "";
    $("key").focus();
  }

  function live(ok, message) {
    const l = $("live");
    l.className = ok ? "live" : "live down";
    l.textContent = message;
  }

  function batchItem(b) {
    const c = counts(b);
    const took = duration(b.created_at, finishedAt(b));
    return el("li", { class: "batch", "data-id": b.id, "data-status": b.status },
      el("div", { class: "head" },
        el("a", { class: "id", href: "#/batches/" + encodeURIComponent(b.id) }, b.id),
        statusBadge(b.status)),
      progress(b.status, c, false, problemCount(b)),
      facts([
        ["Created", time(b.created_at)],
        ["Finished", [time(finishedAt(b)), took ? el("span", { class: "took" }, ` (${took})`) : null]],
        ["Tokens", usageText(b.usage)],
        ["Metadata", metadataList(b.metadata)],
      ]));
  }

  function renderList(page) {
    // Older pages stay as loaded; a batch made since moves from them to the first page.
    const fresh = new Set(page.data.map((b) => b.id));
    const all = page.data.concat(state.older.filter((b) => !fresh.has(b.id)));
    const byStatus = {};
    for (const b of all) byStatus[b.status] = (byStatus[b.status] || 0) + 1;
    const parts = Object.entries(byStatus).map(([s, n]) => `${n} ${s.replace("_", " ")}`);
    $("list-summary").textContent = all.length
      ? `${all.length} batch${all.length === 1 ? "" : "es"}: ${parts.join(" · ")}`
      : "No batches yet for this key. Create one with the API (POST /v1/batches) and it shows up here.";
    $("batches").replaceChildren(...all.map(batchItem));
    $("more").hidden = !(state.older.length ? state.hasMore : page.has_more);
    return all.some((b) => !TERMINAL.has(b.status));
  }

  async function loadOlder() {
    const all = $("batches").querySelectorAll("li.batch");
    const last = all.length ? all[all.length - 1].dataset.id : "";
    const page = await api(`/v1/batches?limit=${PAGE}&after=${encodeURIComponent(last)}`);
    state.older = state.older.concat(page.data);
    state.hasMore = page.has_more;
    tick();
  }

  async function download(fileId, fallbackName, button) {
    button.disabled = true;
    setNotice("Downloading " + fallbackName + "…");
    try {
      const r = await fetch(`/v1/files/${encodeURIComponent(fileId)}/content`, {
        headers: { Authorization: "Bearer " + key() },
        cache: "no-store",
        credentials: "omit",
      });
      if (r.status === 401) throw new Unauthorized();
      if (!r.ok) throw new Error(await errorMessage(r));
      const blob = await r.blob();
      const disposition = /filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "");
      const name = disposition ? disposition[1] : fallbackName;
      const url = URL.createObjectURL(blob);
      const a = el("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      setNotice(`Downloaded ${name} (${fmtInt(blob.size)} bytes).`);
    } catch (e) {
      if (e instanceof Unauthorized) return showLogin("The engine no longer accepts this key.");
      setNotice("Download failed: " + e.message);
    } finally {
      button.disabled = false;
    }
  }

  function setNotice(text) {
    state.notice = text;
    const n = $("notice");
    if (n) n.textContent = text;
  }

  function fileButton(label, fileId, fallbackName, cls) {
    if (!fileId) return el("button", { type: "button", class: "file", disabled: true }, label + " (none)");
    const b = el("button", { type: "button", class: "file " + cls, "data-file": fileId }, label);
    b.addEventListener("click", () => download(fileId, fallbackName, b));
    return b;
  }

  function providerRows(b, providers) {
    const finished = TERMINAL.has(b.status);
    return providers.map((p) => {
      const c = p.request_counts;
      const left = Math.max(0, c.total - c.completed - c.failed);
      return [
        el("b", {}, p.provider),
        progress(b.status === "finalizing" ? "finalizing" : "in_progress", c, true),
        fmtInt(c.total),
        fmtInt(c.completed),
        fmtInt(c.failed),
        finished ? `${fmtInt(left)} not run` : `${fmtInt(left)} to go`,
        usageText(p.usage),
      ];
    });
  }

  // Native mode's upstream batches, when the engine reports them on the batch
  // (`upstream_batches`: [{provider, id, status, request_counts}]).
  function upstreamSection(b) {
    const ups = Array.isArray(b.upstream_batches) ? b.upstream_batches : null;
    if (!ups) return null;
    const rows = ups.map((u) => {
      const c = u.request_counts;
      return [u.provider || "—", el("code", {}, u.id || "—"), u.status ? statusBadge(u.status) : "—",
        c ? `${fmtInt(c.completed)} / ${fmtInt(c.failed)} / ${fmtInt(c.total)}` : "—"];
    });
    return el("section", { id: "upstream" }, el("h2", {}, "Upstream batches"),
      table(["Provider", "Upstream id", "Status", "Completed / failed / total"], rows, "None submitted yet."));
  }

  function errorRows(b) {
    const data = (b.errors && b.errors.data) || [];
    return data
      .slice()
      .sort((x, y) => (x.line ?? Infinity) - (y.line ?? Infinity))
      .map((e) => [e.line ?? "—", el("code", {}, e.code || ""), e.param || "", e.message || ""]);
  }

  function renderDetail(b, providers) {
    const c = counts(b);
    const u = b.usage || {};
    const times = [["Created", time(b.created_at)], ["In progress", time(b.in_progress_at)]];
    for (const [label, f] of [["Finalizing", "finalizing_at"], ["Completed", "completed_at"], ["Failed", "failed_at"],
      ["Expired", "expired_at"], ["Cancelling", "cancelling_at"], ["Cancelled", "cancelled_at"]]) {
      if (b[f]) times.push([label, time(b[f])]);
    }
    if (!TERMINAL.has(b.status)) times.push(["Expires", time(b.expires_at)]);
    const took = duration(b.created_at, finishedAt(b));
    if (took) times.push(["Took", took]);
    const sections = [
      el("nav", {}, el("a", { href: "#/" }, "← All batches")),
      el("h1", { class: "title" }, "Batch ", el("code", { id: "batch-id" }, b.id), " ", statusBadge(b.status)),
      progress(b.status, c, false, problemCount(b)),
      el("div", { class: "cards" },
        el("div", { class: "card" }, el("h2", {}, "Times"), facts(times)),
        el("div", { class: "card" }, el("h2", {}, "Batch"), facts([
          ["Endpoint", el("code", {}, b.endpoint)],
          ["Requests", `${fmtInt(c.total)} (${fmtInt(c.completed)} completed, ${fmtInt(c.failed)} failed)`],
          ["Input file", el("code", {}, b.input_file_id)],
          ["Metadata", metadataList(b.metadata)],
        ])),
        el("div", { class: "card" }, el("h2", {}, "Usage"), facts([
          ["Input tokens", fmtInt(u.input_tokens) +
            (u.input_tokens_details && u.input_tokens_details.cached_tokens
              ? ` (${fmtInt(u.input_tokens_details.cached_tokens)} cached)` : "")],
          ["Output tokens", fmtInt(u.output_tokens) +
            (u.output_tokens_details && u.output_tokens_details.reasoning_tokens
              ? ` (${fmtInt(u.output_tokens_details.reasoning_tokens)} reasoning)` : "")],
          ["Total tokens", fmtInt(u.total_tokens)],
        ]))),
      el("section", { id: "files" }, el("h2", {}, "Files"),
        el("div", { class: "buttons" },
          fileButton("Download output", b.output_file_id, b.id + "_output.jsonl", "output"),
          fileButton("Download errors", b.error_file_id, b.id + "_error.jsonl", "errors"),
          fileButton("Download input", b.input_file_id, b.id + "_input.jsonl", "input")),
        el("p", { id: "notice", class: "notice", role: "status" }, state.notice)),
      el("section", { id: "providers" }, el("h2", {}, "By provider"),
        table(["Provider", "Progress", "Total", "Completed", "Failed", "Left", "Tokens"], providerRows(b, providers),
          b.status === "validating" ? "Known once the input file is validated." : "No requests ran.")),
      upstreamSection(b),
      el("section", { id: "errors" }, el("h2", {}, "Errors"),
        table(["Line", "Code", "Field", "Message"], errorRows(b), "None.")),
    ];
    $("detail").replaceChildren(...sections.filter(Boolean));
  }

  // --- routing and polling ---------------------------------------------------------------

  function route() {
    const m = /^#\/batches\/(.+)$/.exec(location.hash);
    return m ? { view: "detail", id: decodeURIComponent(m[1]) } : { view: "list" };
  }

  async function tick() {
    clearTimeout(state.timer);
    if (!key()) return showLogin();
    const generation = ++state.generation;
    const r = route();
    let busy = false;
    try {
      if (document.visibilityState !== "hidden") {
        if (r.view === "list") {
          const page = await api(`/v1/batches?limit=${PAGE}`);
          if (generation !== state.generation) return;
          show("list");
          busy = renderList(page);
        } else {
          const id = encodeURIComponent(r.id);
          const [b, providers] = await Promise.all([api(`/v1/batches/${id}`), api(`/v1/batches/${id}/providers`)]);
          if (generation !== state.generation) return;
          show("detail");
          // Rebuilt only when something changed, so buttons stay put while nothing moves.
          const snapshot = JSON.stringify([b, providers.data]);
          if (snapshot !== state.shown) {
            state.shown = snapshot;
            renderDetail(b, providers.data);
          }
          busy = !TERMINAL.has(b.status);
        }
        live(true, "live · updated " + new Date().toLocaleTimeString());
      }
    } catch (e) {
      if (generation !== state.generation) return;
      if (e instanceof Unauthorized) return showLogin("The engine does not accept this key.");
      if (e instanceof NotFound) {
        show("detail");
        state.shown = "";
        $("detail").replaceChildren(
          el("nav", {}, el("a", { href: "#/" }, "← All batches")),
          el("h1", {}, "No such batch"),
          el("p", { class: "error" }, `This key has no batch ${r.id}.`));
      } else {
        live(false, "engine unreachable, retrying… (" + e.message + ")");
      }
    }
    state.timer = setTimeout(tick, busy ? POLL_BUSY_MS : POLL_IDLE_MS);
  }

  function start() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = $("key").value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY_SLOT, value);
      $("key").value = "";
      state.older = [];
      tick();
    });
    $("signout").addEventListener("click", () => showLogin());
    $("more").addEventListener("click", () => loadOlder().catch((e) => live(false, e.message)));
    window.addEventListener("hashchange", () => {
      state.shown = "";
      state.notice = "";
      window.scrollTo(0, 0);
      tick();
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") tick();
    });
    tick();
  }

  start();
})();
