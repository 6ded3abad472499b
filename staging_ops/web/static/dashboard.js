/*
 * The Staging Dashboard: polls /staging/board.json and acts through the Staging API.
 *
 * No framework and no third-party code. Everything is built with DOM methods and textContent,
 * so no value from the registry (a note, a branch name) is ever parsed as HTML.
 *
 * The admin token
 * - lives in sessionStorage only: this tab, gone when it closes. It is never written into the
 *   DOM, a cookie or a URL, and the sign-in field is emptied as soon as it is read;
 * - is sent only as an `Authorization: Bearer` header by fetch() to relative URLs, that is to
 *   this page's own origin (the server's Content-Security-Policy `connect-src 'self'` makes
 *   sure of that even if this script had a bug).
 * CSRF: the API reads credentials from that header and never from a cookie, so a request forged
 * by another site carries none and is refused; the server also refuses cross-origin writes.
 */
"use strict";

(() => {
  const TOKEN_KEY = "staging-ops:admin-token";
  const POLL_MS = 3000;
  const DEFAULT_TTL = "7d";
  const BOARD_URL = document.body.dataset.boardUrl;
  const API_URL = document.body.dataset.apiUrl;

  let token = sessionStorage.getItem(TOKEN_KEY);
  let board = null; // the last board.json
  let skewMs = 0; // the server's clock minus ours: relative times follow the server's clock
  let pollTimer = 0;
  let generation = 0; // answers to superseded refreshes are dropped
  let dialogSlot = null; // the slot the open dialog acts on

  const $ = (id) => document.getElementById(id);

  // ---- small DOM helpers -------------------------------------------------------------------

  /** An element with attributes (`text`, `className`, `dataset` are special) and children. */
  function el(tag, props = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    node.append(...children.filter((child) => child !== null && child !== undefined));
    return node;
  }

  const none = () => el("span", { className: "muted none", title: "none", text: "–" });
  const textOrNone = (value) => (value ? document.createTextNode(value) : none());
  const slotName = (id) => board?.slots.find((s) => s.slot === id)?.identifier || `slot ${id}`;

  function sentence(text) {
    const trimmed = String(text).trim();
    return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
  }

  // ---- time --------------------------------------------------------------------------------

  const now = () => Date.now() + skewMs;

  /** A duration as people say it: 40 s, 12 min, 5 h, 30 h, 2 d (rounded, never "60 min"). */
  function span(seconds) {
    const s = Math.round(Math.abs(seconds));
    const minutes = Math.round(s / 60);
    const hours = Math.round(s / 3600);
    if (s < 60) return `${s} s`;
    if (minutes < 60) return `${minutes} min`;
    if (hours < 36) return `${hours} h`;
    return `${Math.round(s / 86400)} d`;
  }

  function relative(iso) {
    const seconds = (Date.parse(iso) - now()) / 1000;
    if (Math.abs(seconds) < 5) return "just now";
    return seconds > 0 ? `in ${span(seconds)}` : `${span(seconds)} ago`;
  }

  function absolute(iso) {
    return `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC`;
  }

  /** A <time> that updateTimes() keeps saying "3 min ago"; its title has the exact time. */
  function timeEl(iso, prefix = "") {
    if (!iso) return none();
    const node = el("time", { datetime: iso, title: absolute(iso), dataset: { at: iso, prefix } });
    node.textContent = prefix + relative(iso);
    return node;
  }

  function updateTimes() {
    for (const node of document.querySelectorAll("time[data-at]")) {
      node.textContent = node.dataset.prefix + relative(node.dataset.at);
    }
  }

  /** Seconds as the CLI writes a TTL: 7d, 12h, 1d6h, 30m. */
  function ttlText(seconds) {
    if (!seconds) return DEFAULT_TTL;
    const parts = [
      [Math.floor(seconds / 86400), "d"],
      [Math.floor((seconds % 86400) / 3600), "h"],
      [Math.floor((seconds % 3600) / 60), "m"],
    ];
    return parts.filter(([n]) => n).map(([n, unit]) => `${n}${unit}`).join("") || DEFAULT_TTL;
  }

  // ---- talking to the server ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** One JSON request to this origin with the token; ApiError (status 0: unreachable). */
  async function request(method, url, payload) {
    const headers = { Accept: "application/json", Authorization: `Bearer ${token}` };
    const init = { method, headers, credentials: "omit", cache: "no-store" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, "The server cannot be reached; is it running?");
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      // not JSON (a proxy's error page, say): described by its status below
    }
    if (!response.ok) {
      const error = typeof data?.error === "string" ? data.error : "";
      throw new ApiError(response.status, error || `HTTP ${response.status} ${response.statusText}`);
    }
    if (data === null) throw new ApiError(response.status, "The server's answer was not JSON.");
    return data;
  }

  /** What went wrong, in words, for an operator: "Claiming staging-5 for JA-5 failed: ...". */
  function describe(err, doing) {
    switch (err.status) {
      case 0:
        return `${doing} failed: ${sentence(err.message)}`;
      case 400:
      case 404:
        return `${doing} was refused: ${sentence(err.message)}`;
      case 409:
        return `${doing} was refused, conflict: ${sentence(err.message)}`;
      case 503:
        return (
          `${doing} failed: the slot registry is unavailable. Try again in a moment ` +
          "(a fresh registry must be migrated first: invoke registry.migrate or provision-all)."
        );
      default:
        return `${doing} failed: ${sentence(err.message)} (HTTP ${err.status})`;
    }
  }

  /** The sign-in problem behind an error, or null when the error is not about the token. */
  function authProblem(err) {
    if (err.status === 401) {
      return err.message === "token expired"
        ? "Your admin token has expired. Sign in again with a fresh one."
        : `The server refused the token (${err.message}). Sign in with a valid admin token.`;
    }
    if (err.status === 403 && err.message === "admin token required") {
      return "That token is valid but is not an admin token. Sign in with an admin token.";
    }
    return null;
  }

  // ---- messages ----------------------------------------------------------------------------

  const NOTICE_MS = 10000;
  let noticeTimer = 0;

  /** Say what was done; it fades after a while (errors stay until dismissed or replaced). */
  function say(text) {
    $("problem").hidden = true;
    $("notice").textContent = text;
    $("notice").hidden = !text;
    clearTimeout(noticeTimer);
    if (text) noticeTimer = setTimeout(() => ($("notice").hidden = true), NOTICE_MS);
  }

  function complain(text) {
    $("notice").hidden = true;
    $("problem-text").textContent = text;
    $("problem").hidden = !text;
  }

  $("problem-dismiss").addEventListener("click", () => complain(""));

  // ---- signing in and out ------------------------------------------------------------------

  function signOut(reason) {
    token = null;
    board = null;
    sessionStorage.removeItem(TOKEN_KEY);
    clearTimeout(pollTimer);
    generation += 1;
    for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
    $("slots").tBodies[0].replaceChildren();
    $("events").replaceChildren();
    $("board").hidden = true;
    $("session").hidden = true;
    $("signin").hidden = false;
    $("signin-reason").textContent = reason
      ? "Sign in again to see and manage the slots."
      : "You are not signed in. Sign in with an admin token to see and manage the slots.";
    if (reason) complain(reason);
  }

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("signin-token");
    const candidate = input.value.trim().replace(/^Bearer\s+/i, "");
    input.value = "";
    if (!candidate) return;
    token = candidate;
    sessionStorage.setItem(TOKEN_KEY, token);
    say("");
    complain("");
    refresh({ focusBoard: true });
  });

  $("sign-out").addEventListener("click", () => {
    signOut(null);
    say("Signed out. The token is forgotten by this tab.");
    $("signin-token").focus();
  });

  // ---- polling -----------------------------------------------------------------------------

  async function refresh({ focusBoard = false } = {}) {
    clearTimeout(pollTimer);
    if (!token) return;
    const mine = ++generation;
    if (document.hidden) {
      pollTimer = setTimeout(refresh, POLL_MS); // nobody is looking; check again later
      return;
    }
    try {
      const data = await request("GET", BOARD_URL);
      if (mine !== generation) return;
      skewMs = Date.parse(data.now) - Date.now();
      render(data);
      if (!showLinkedSlot() && focusBoard) $("slots-heading").focus();
    } catch (err) {
      if (mine !== generation) return;
      const problem = authProblem(err);
      if (problem) {
        signOut(problem);
        return;
      }
      showFreshness(`${describe(err, "Refreshing the slots")} Trying again every few seconds.`);
    }
    if (mine === generation && token) pollTimer = setTimeout(refresh, POLL_MS);
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });

  // ---- rendering ---------------------------------------------------------------------------

  function render(data) {
    board = data;
    $("signin").hidden = true;
    $("board").hidden = false;
    $("session").hidden = false;
    $("session-subject").textContent = data.subject;
    $("session-expiry").replaceChildren(", token expires ", timeEl(data.token_expires_at));
    $("inventory-note").textContent = data.inventory_error || "";
    $("inventory-note").hidden = !data.inventory_error;
    renderSlots(data.slots);
    renderEvents(data.events);
    showFreshness(null);
    updateTimes();
  }

  // A link to one slot (`…/staging#staging-4`, the log_url on a PR): its row, once it exists
  // (the rows come after the page, so the browser's own jump to the anchor finds nothing).
  // Whether it did (then the slot's row has the focus, not the board's heading).
  let linkedSlotShown = false;
  function showLinkedSlot() {
    if (linkedSlotShown || !location.hash) return false;
    linkedSlotShown = true;
    const row = document.getElementById(decodeURIComponent(location.hash.slice(1)));
    if (!row || row.tagName !== "TR") return false;
    row.scrollIntoView({ block: "center" });
    row.querySelector("th")?.focus();
    return true;
  }

  function showFreshness(problem) {
    const line = $("freshness");
    line.classList.toggle("problem-text", Boolean(problem));
    if (problem) {
      line.textContent = problem;
      return;
    }
    const checked = board?.health_checked_at;
    line.replaceChildren(
      `Refreshes every ${POLL_MS / 1000} s`,
      ...(checked ? [", health checked ", timeEl(checked)] : []),
    );
  }

  /** Replace only the rows whose data changed, so focus in the other rows stays put. */
  function renderSlots(slots) {
    const tbody = $("slots").tBodies[0];
    const sameSlots =
      tbody.rows.length === slots.length &&
      slots.every((slot, i) => tbody.rows[i].dataset.slot === String(slot.slot));
    if (!sameSlots) {
      tbody.replaceChildren(...slots.map(slotRow));
      return;
    }
    slots.forEach((slot, i) => {
      const old = tbody.rows[i];
      const row = slotRow(slot);
      if (old.dataset.signature === row.dataset.signature) return;
      const focused = old.contains(document.activeElement) ? document.activeElement : null;
      old.replaceWith(row);
      if (focused) {
        const same = row.querySelector(`[data-action="${focused.dataset.action}"]`);
        (same || row.querySelector("button") || row.cells[0]).focus();
      }
    });
  }

  function cell(label, ...content) {
    // Empty cells are left out of the narrow (card) layout.
    const empty = content.length === 1 && content[0]?.classList?.contains("none");
    return el("td", { dataset: { label }, className: empty ? "empty" : null }, ...content);
  }

  function slotState(slot) {
    if (slot.status !== "claimed") return slot.status === "free" ? "free" : "unregistered";
    return slot.expired ? "expired" : "claimed";
  }

  function slotRow(slot) {
    const name = slot.identifier || `slot ${slot.slot}`;
    const state = slotState(slot);
    const signature = JSON.stringify([slot, board.linear_url]);
    // id: the slot's own address on the board (`#staging-4`: the PR's and task's links).
    const row = el("tr", { id: slot.identifier || null, dataset: { slot: slot.slot, signature } });
    const claimed = slot.status === "claimed";
    row.append(
      el(
        "th",
        { scope: "row", tabindex: "-1" },
        name,
        slot.role === "staging" ? el("span", { className: "tag", text: "shared" }) : null,
        el("span", { className: "address" }, slot.url ? outLink(slot.url, slot.subdomain) : slot.subdomain),
      ),
      cell("Status", el("span", { className: `badge ${state}`, text: statusText(state) })),
      cell("Task", taskLink(slot.task)),
      cell("Owner", textOrNone(claimed ? slot.owner : null)),
      cell("Branch", slot.branch ? el("code", { text: slot.branch }) : none()),
      cell("Commit", slot.commit ? el("code", { title: slot.commit, text: slot.commit.slice(0, 7) }) : none()),
      cell("Deployed", timeEl(slot.deployed_at)),
      cell("Expires", claimed ? expiry(slot) : none()),
      cell("Health", health(slot)),
      cell("Actions", actions(slot, name, state)),
    );
    return row;
  }

  function statusText(state) {
    return state === "unregistered" ? "not in the registry" : state;
  }

  /** A link that opens in a new tab and tells the other site nothing about this page. */
  function outLink(href, text) {
    return el(
      "a",
      { href, target: "_blank", rel: "noopener noreferrer" },
      text,
      el("span", { className: "visually-hidden", text: " (opens in a new tab)" }),
    );
  }

  function taskLink(task) {
    if (!task) return none();
    if (!board.linear_url) return el("span", { text: task });
    return outLink(`${board.linear_url}/${encodeURIComponent(task)}`, task);
  }

  function expiry(slot) {
    const node = timeEl(slot.expires_at, slot.expired ? "expired " : "");
    if (slot.expired) node.classList.add("late");
    return node;
  }

  function health(slot) {
    if (board.inventory_error) return none(); // no inventory: nothing can be checked
    const badge = (label, value) =>
      el("span", {
        className: `badge ${value || "unknown"}`,
        title: value ? `${label} is ${value}` : `${label} not checked yet`,
        text: `${label} ${value || "…"}`,
      });
    return el(
      "span",
      { className: "health" },
      badge("UI", slot.ui),
      badge("Airflow", slot.airflow),
      drift(slot),
      processes(slot),
    );
  }

  /** Each process the live release declares (web, airflow, scheduler, a Procfile's own
      workers): a badge with its state, whose title names its unit and what is wrong. */
  function processes(slot) {
    const declared = slot.processes;
    if (!declared) return null;
    return el(
      "span",
      { className: "processes", role: "group", "aria-label": "Processes" },
      ...Object.entries(declared).map(([type, judged]) => {
        const what = judged.problem ? `: ${judged.problem}` : "";
        return el("span", {
          className: `badge process ${judged.state === "up" ? "up" : "down"}`,
          dataset: { process: type, state: judged.state },
          title: `${type} (${judged.unit}) is ${judged.state}${what}`,
          text: `${type} ${judged.state}`,
        });
      }),
    );
  }

  /** Registry, the droplet's `current` and /api/version disagree, the live release was never
      verified (or the droplet was not read): a flag with the verdict's own label (status's
      drift cell), whose title is the whole sentence. Nothing while all is well. */
  function drift(slot) {
    const verdict = slot.drift;
    if (!verdict || verdict.state === "ok") return null;
    const unknown = verdict.state === "unknown";
    return el(
      "span",
      { className: `badge ${unknown ? "unknown" : "drift"}`, title: verdict.message },
      unknown ? "drift ?" : verdict.pairs.length ? `drift ${verdict.label}` : verdict.label,
      el("span", { className: "visually-hidden", text: `: ${verdict.message}` }),
    );
  }

  function actions(slot, name, state) {
    if (state === "unregistered") return none();
    const button = (action, text, label, className) =>
      el("button", { type: "button", className, dataset: { action }, "aria-label": label, text });
    if (slot.status !== "claimed") {
      return el("div", { className: "actions" }, button("claim", "Claim", `Claim ${name}`, "primary"));
    }
    return el(
      "div",
      { className: "actions" },
      button("extend", "Extend", `Extend the claim on ${name}`),
      button("deploys", "Deploys", `Deploys of ${name}`),
      button("release", "Release", `Release ${name}`, "danger"),
    );
  }

  function renderEvents(events) {
    const list = $("events");
    const signature = events.map((e) => e.id).join(",");
    if (list.dataset.signature === signature) return; // times are kept fresh by updateTimes()
    list.dataset.signature = signature;
    if (!events.length) {
      list.replaceChildren(el("li", { className: "muted", text: "No events yet." }));
      return;
    }
    list.replaceChildren(...events.map(eventItem));
  }

  function eventItem(event) {
    const changes = event.changes.map((c) => `${c.field} ${c.before} → ${c.after}`).join("; ");
    return el(
      "li",
      { dataset: { event: event.id } },
      el(
        "div",
        {},
        timeEl(event.at),
        " · ",
        el("strong", { text: slotName(event.slot_id) }),
        " · ",
        el("span", { className: `tag action-${event.action}`, text: event.action }),
        ` by ${event.actor}`,
        event.via ? el("span", { className: "muted", text: ` via ${event.via}` }) : null,
      ),
      changes || event.detail ? el("p", { text: [event.detail, changes].filter(Boolean).join(" · ") }) : null,
    );
  }

  // ---- actions -----------------------------------------------------------------------------

  $("slots").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !board) return;
    const id = Number(button.closest("tr").dataset.slot);
    const slot = board.slots.find((s) => s.slot === id);
    if (!slot) return;
    if (button.dataset.action === "claim") openClaim(slot);
    else if (button.dataset.action === "extend") openExtend(slot);
    else if (button.dataset.action === "release") release(slot);
    else if (button.dataset.action === "deploys") openDeploys(slot);
  });

  function openDialog(id, slot, title, focusId) {
    dialogSlot = slot;
    const dialog = $(id);
    dialog.querySelector("form").reset();
    dialog.querySelector("h2").textContent = title;
    dialog.querySelector(".problem").hidden = true;
    dialog.showModal();
    $(focusId).focus();
  }

  function openClaim(slot) {
    openDialog("claim-dialog", slot, `Claim ${slot.identifier}`, "claim-task");
    $("claim-owner").value = board.subject || "";
  }

  function openExtend(slot) {
    openDialog("extend-dialog", slot, `Extend ${slot.identifier} (${slot.task})`, "extend-ttl");
    $("extend-ttl").value = ttlText(slot.ttl_seconds);
  }

  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.querySelector("[data-close]").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      // The row that opened the dialog may have been re-rendered meanwhile: focus its twin.
      if (document.activeElement && document.activeElement !== document.body) return;
      const row = dialogSlot && document.querySelector(`tr[data-slot="${dialogSlot.slot}"]`);
      (row?.querySelector("button") || row?.cells[0])?.focus();
    });
  }

  /** Run a dialog's action: close it and say what was done, or show the error in the dialog. */
  async function submitDialog(form, doing, action) {
    const button = form.querySelector('[type="submit"]');
    const problem = form.querySelector(".problem");
    button.disabled = true;
    problem.hidden = true;
    try {
      const done = await action();
      form.closest("dialog").close();
      say(done);
    } catch (err) {
      const signedOut = authProblem(err);
      if (signedOut) {
        signOut(signedOut);
        return;
      }
      problem.textContent = describe(err, doing);
      problem.hidden = false;
    } finally {
      button.disabled = false;
      refresh();
    }
  }

  const fieldValue = (id) => $(id).value.trim();

  $("claim-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const slot = dialogSlot;
    const payload = { slot_id: slot.slot, task: fieldValue("claim-task") };
    for (const key of ["owner", "ttl", "note"]) {
      const value = fieldValue(`claim-${key}`);
      if (value) payload[key] = value;
    }
    const doing = `Claiming ${slot.identifier} for ${payload.task.toUpperCase()}`;
    submitDialog(event.currentTarget, doing, async () => {
      const result = await request("PUT", `${API_URL}/slots`, payload);
      const s = result.slot;
      const verb = result.renewed ? "Renewed the claim on" : "Claimed";
      return `${verb} ${s.identifier} for ${s.task} (owner ${s.owner}) until ${absolute(s.expires_at)}.`;
    });
  });

  $("extend-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const slot = dialogSlot;
    const payload = { slot_id: slot.slot, task: slot.task, ttl: fieldValue("extend-ttl") };
    submitDialog(event.currentTarget, `Extending ${slot.identifier}`, async () => {
      const result = await request("PUT", `${API_URL}/slots`, payload);
      const s = result.slot;
      // Renewing is claiming again with the holding task; if the slot was freed meanwhile,
      // that claims it anew, and the operator should know.
      const how = result.renewed ? "Extended" : "It had been released; claimed again";
      return `${how} ${s.identifier} for ${s.task} until ${absolute(s.expires_at)}.`;
    });
  });

  async function release(slot) {
    const name = slot.identifier;
    const question =
      `Release ${name}? It is held by ${slot.task} (owner ${slot.owner}); ` +
      "whoever tests there loses the slot.";
    if (!window.confirm(question)) return;
    try {
      // Naming the task makes the release conditional: if another task took the slot since
      // this page last looked, the API answers with a conflict instead of freeing it.
      const result = await request("POST", `${API_URL}/slots/${slot.slot}/release`, {
        task: slot.task,
      });
      const before = result.before;
      say(
        result.released
          ? `Released ${name} (was ${before.task}, owner ${before.owner}).`
          : `${name} was already free.`,
      );
    } catch (err) {
      const signedOut = authProblem(err);
      if (signedOut) {
        signOut(signedOut);
        return;
      }
      complain(describe(err, `Releasing ${name}`));
    }
    refresh();
  }

  // ---- deploys and rollbacks (run by the server's deploy workers) ----------------------------

  const PROGRESS_MS = 500; // the request's progress is polled at least every second
  let following = 0; // the request whose progress is shown (0: none)

  function openDeploys(slot) {
    openDialog("deploy-dialog", slot, `Deploys of ${slot.identifier} (${slot.task})`, "deploy-branch");
    $("deploy-branch").value = slot.branch || "";
    $("deploy-progress").hidden = true;
    following = 0;
    loadReleases(slot);
  }

  $("deploy-dialog").addEventListener("close", () => {
    following = 0;
  });

  async function loadReleases(slot) {
    $("releases-note").textContent = "Reading the slot's releases…";
    try {
      const data = await request("GET", `${API_URL}/slots/${slot.slot}/releases`);
      if (dialogSlot !== slot) return;
      $("releases-note").textContent = data.releases.length ? "" : "No releases yet.";
      $("releases").replaceChildren(...data.releases.map((r) => releaseItem(slot, r)));
      $("recent-deploys").replaceChildren(...data.deploys.map(deployItem));
    } catch (err) {
      const signedOut = authProblem(err);
      if (signedOut) {
        signOut(signedOut);
        return;
      }
      $("releases-note").textContent = describe(err, "Reading the releases");
    }
  }

  function releaseItem(slot, r) {
    const canRollBack = r.state === "verified" && !r.live;
    return el(
      "li",
      { dataset: { release: r.release, state: r.state } },
      el("code", { text: r.release }),
      " ",
      el("span", { className: `badge ${r.state === "verified" ? "up" : r.state === "bad" ? "down" : "unknown"}`, text: r.state }),
      r.live ? el("span", { className: "tag", text: "live" }) : null,
      ` ${r.branch} `,
      el("code", { title: r.commit, text: r.commit.slice(0, 7) }),
      canRollBack
        ? el("button", {
            type: "button",
            dataset: { rollback: r.release },
            "aria-label": `Roll back ${slot.identifier} to ${r.release}`,
            text: "Roll back",
          })
        : null,
    );
  }

  function deployItem(d) {
    const what = d.kind === "deploy" ? `deploy of ${d.branch}` : `rollback${d.target ? ` to ${d.target}` : ""}`;
    const item = el(
      "li",
      { dataset: { request: d.id, state: d.state } },
      el("strong", { text: `#${d.id}` }),
      ` ${what} via ${d.via} by ${d.requested_by}: `,
      el("span", { className: "tag", text: d.state }),
      d.finished_at ? el("span", { className: "muted" }, " ", timeEl(d.finished_at)) : null,
    );
    const log = [...d.steps.map((s) => `${s.outcome} ${s.step} ${s.seconds ?? ""}s ${s.detail || ""}`)];
    if (d.error) log.push("", d.error);
    if (log.length) {
      item.append(
        el(
          "details",
          {},
          el("summary", { text: d.state === "failed" ? "Steps and the failure's lines" : "Steps" }),
          el("pre", { className: "lines", text: log.join("\n") }),
        ),
      );
    }
    return item;
  }

  function busy(on) {
    $("deploy-submit").disabled = on;
    for (const b of document.querySelectorAll("#releases button")) b.disabled = on;
  }

  /** Queue an action, then show its progress until it ends. */
  async function queueAction(slot, doing, url, payload) {
    const problem = $("deploy-error");
    problem.hidden = true;
    busy(true);
    try {
      const queued = await request("POST", url, payload);
      await follow(slot, queued.url, doing);
    } catch (err) {
      const signedOut = authProblem(err);
      if (signedOut) {
        signOut(signedOut);
        return;
      }
      problem.textContent = describe(err, doing);
      problem.hidden = false;
    } finally {
      busy(false);
      refresh();
    }
  }

  async function follow(slot, url, doing) {
    const mine = ++following;
    const box = $("deploy-progress");
    box.hidden = false;
    for (;;) {
      const { request: d } = await request("GET", url);
      if (mine !== following) return;
      box.dataset.state = d.state;
      const where = d.step && d.state === "running" ? `: ${d.step}` : "";
      let text = `${doing} (#${d.id}): ${d.state}${where}`;
      if (d.state === "done") {
        const r = d.result || {};
        text = r.skipped
          ? `${doing} (#${d.id}): done, ${r.skipped}`
          : `${doing} (#${d.id}): done, ${slot.identifier} serves ${r.branch || ""} ${(r.commit || "").slice(0, 7)}, verified`;
      } else if (d.state === "failed") {
        text = `${doing} (#${d.id}) failed: ${(d.error || "").split("\n")[0]}`;
      } else if (d.state === "superseded") {
        text = `${doing} (#${d.id}) was superseded by #${d.superseded_by}`;
      }
      $("deploy-progress-text").textContent = text;
      $("deploy-steps").replaceChildren(
        ...d.steps.map((s) => el("li", { dataset: { outcome: s.outcome }, text: `${s.step}: ${s.outcome}${s.detail ? ` (${s.detail})` : ""}` })),
      );
      const lines = d.state === "failed" ? d.error || "" : "";
      $("deploy-lines").textContent = lines;
      $("deploy-lines").hidden = !lines;
      if (!["queued", "running"].includes(d.state)) {
        if (dialogSlot === slot) loadReleases(slot);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, PROGRESS_MS));
    }
  }

  $("deploy-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const slot = dialogSlot;
    const branch = fieldValue("deploy-branch");
    queueAction(slot, `Deploying ${branch} to ${slot.identifier}`, `${API_URL}/slots/${slot.slot}/deploy`, {
      branch,
      task: slot.task,
    });
  });

  $("releases").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-rollback]");
    if (!button) return;
    const slot = dialogSlot;
    const release = button.dataset.rollback;
    queueAction(slot, `Rolling ${slot.identifier} back to ${release}`, `${API_URL}/slots/${slot.slot}/rollback`, {
      release,
      task: slot.task,
    });
  });

  // ---- start -------------------------------------------------------------------------------

  if (token) {
    $("signin").hidden = true;
    refresh();
  } else {
    signOut(null);
  }
  setInterval(updateTimes, 15000);
})();
