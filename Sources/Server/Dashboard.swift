/// The dashboard (`GET /`): one static page that reads the JSON API (stats, queues, recent jobs, the
/// dead-letter queue, schedules) every few seconds. With API keys on, it asks for a key and keeps it in the browser.
enum Dashboard {
    static let html = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
    <title>Docket</title>
    <style>
    body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
    header{background:#1d2330;color:#fff;padding:12px 20px;display:flex;gap:16px;align-items:center}
    header h1{font-size:18px;margin:0}#health{font-size:12px;padding:2px 8px;border-radius:10px;background:#555}
    main{padding:16px 20px;display:grid;gap:16px}
    section{background:#fff;border-radius:8px;padding:12px 16px;box-shadow:0 1px 2px #0001}
    h2{font-size:15px;margin:0 0 8px}table{border-collapse:collapse;width:100%}
    th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eee;font-variant-numeric:tabular-nums}
    th{font-weight:600;color:#566}.cards{display:flex;gap:12px;flex-wrap:wrap}
    .card{background:#fff;border-radius:8px;padding:10px 16px;min-width:90px;box-shadow:0 1px 2px #0001}
    .card b{display:block;font-size:22px}.state{padding:1px 6px;border-radius:4px;background:#eef}
    .dead,.cancelled{background:#fdd}.completed{background:#dfd}.active{background:#ffd}
    button{font:inherit;cursor:pointer}code{font-size:12px}
    #search{display:flex;gap:8px;flex-wrap:wrap;margin-bottom:8px}#search input,#search select{font:inherit;padding:2px 6px}
    #where{min-width:260px}#note{font-size:13px;color:#566;margin:4px 0}#note.error{color:#b00}
    </style></head>
    <body>
    <header><h1>Docket</h1><span id="health">…</span><span id="lag"></span></header>
    <main>
    <div class="cards" id="cards"></div>
    <section><h2>Queues</h2><table id="queues"></table></section>
    <section><h2>History <small>(journal, newest first)</small></h2>
    <form id="search">
      <input id="where" placeholder="/customer=42; result/status=&quot;ok&quot;" title="payload (or result/…) fields: /pointer=value, ; between conditions">
      <select id="f-state"><option value="">any state</option><option>pending</option><option>scheduled</option><option>active</option><option>retrying</option><option>completed</option><option>dead</option><option>cancelled</option><option>purged</option></select>
      <input id="f-type" placeholder="type" size="12"><input id="f-queue" placeholder="queue" size="10">
      <input id="f-since" type="datetime-local" title="since"><input id="f-until" type="datetime-local" title="until">
      <button type="submit">Search</button><button type="button" id="clear">Clear</button><button type="button" id="replay">Replay…</button>
    </form>
    <div id="note"></div><table id="jobs"></table></section>
    <section><h2>Dead-letter queue</h2><table id="dlq"></table></section>
    <section><h2>Schedules</h2><table id="schedules"></table></section>
    </main>
    <script>
    const esc = s => String(s ?? "–").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
    function headers(){ const k = localStorage.getItem("docketKey"); return k ? {"Authorization": "Bearer " + k} : {}; }
    async function api(path, method = "GET", body, extra) {
      const init = {method, headers: headers()};
      if (body !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
      if (extra) Object.assign(init.headers, extra);
      const r = await fetch(path, init);
      if (r.status === 401) { const k = prompt("API key"); if (k) { localStorage.setItem("docketKey", k); return api(path, method, body, extra); } }
      if (!r.ok) { const e = await r.json().catch(() => null); throw new Error(e?.error?.message ?? (path + ": " + r.status)); }
      return r.json();
    }
    // The history filter from the form: GET /jobs parameters and the same as POST /jobs/replay's filter object.
    function filter() {
      const f = {}, v = id => document.getElementById(id).value.trim();
      const where = v("where").split(";").map(s => s.trim()).filter(s => s);
      if (where.length) f.where = where;
      if (v("f-state")) f.state = v("f-state");
      if (v("f-type")) f.type = v("f-type");
      if (v("f-queue")) f.queue = v("f-queue");
      if (v("f-since")) f.since = new Date(v("f-since")).toISOString();
      if (v("f-until")) f.until = new Date(v("f-until")).toISOString();
      return f;
    }
    function query(f) {
      const p = new URLSearchParams();
      for (const [k, x] of Object.entries(f)) for (const one of [].concat(x)) p.append(k, one);
      return p.toString();
    }
    const note = (text, error) => { const n = document.getElementById("note"); n.textContent = text; n.className = error ? "error" : ""; };
    async function history() {
      const f = filter(), searching = Object.keys(f).length > 0;
      try {
        const jobs = await api("/jobs?limit=" + (searching ? 100 : 20) + (searching ? "&" + query(f) : ""));
        table(document.getElementById("jobs"), ["id","type","queue","state","attempts","created","last error","replay of"],
          jobs.jobs.map(j => jobRow(j) + `<td><code>${esc(j.replayOf)}</code></td></tr>`));
        // A search's count; a replay's or an error's message stays until the next search.
        if (searching && !document.getElementById("note").textContent.startsWith("replayed")) note(jobs.jobs.length + (jobs.nextCursor ? "+" : "") + " matching jobs");
      } catch (e) { note(String(e.message ?? e), true); }
    }
    document.getElementById("search").addEventListener("submit", e => { e.preventDefault(); note(""); history(); });
    document.getElementById("clear").addEventListener("click", () => { document.getElementById("search").reset(); note(""); history(); });
    // Replay: a dry run first, then a confirmation naming how many; one request id for the real call.
    document.getElementById("replay").addEventListener("click", async () => {
      const f = filter();
      try {
        const dry = await api("/jobs/replay", "POST", {filter: f, limit: 1000});
        if (dry.originals.length === 0) { note("no journaled job matches: nothing to replay", true); return; }
        const more = dry.matched > dry.originals.length ? ` (the newest ${dry.originals.length} of ${dry.matched})` : "";
        if (!confirm(`Replay ${dry.originals.length} jobs${more}? Each gets a new job with the same type and payload.`)) return;
        const id = "dash-" + (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
        const done = await api("/jobs/replay", "POST", {filter: f, limit: 1000, dryRun: false}, {"X-Request-Id": id});
        await history();
        note(`replayed ${done.replayed} jobs` + (done.spooled ? ` (${done.spooled} spooled until Redis is back)` : "") + "; the copies show below");
      } catch (e) { note(String(e.message ?? e), true); }
    });
    function table(el, head, rows){ el.innerHTML = "<tr>" + head.map(h => "<th>" + h + "</th>").join("") + "</tr>" + rows.join(""); }
    const jobRow = j => `<tr><td><code>${esc(j.id)}</code></td><td>${esc(j.type)}</td><td>${esc(j.queue)}</td>` +
      `<td><span class="state ${esc(j.state)}">${esc(j.state)}</span></td><td>${esc(j.attempts)}/${esc(j.maxAttempts)}</td>` +
      `<td>${esc(j.createdAt)}</td><td>${esc(j.lastError)}</td>`;
    async function refresh() {
      try {
        const h = await fetch("/health").then(r => r.json());
        const hb = document.getElementById("health");
        hb.textContent = h.status + " · redis " + h.redis + " · journal " + h.journal;
        hb.style.background = h.status === "ok" ? "#2a7" : "#c70";
        document.getElementById("lag").textContent = "journal lag " + h.journalLag;
        const s = await api("/stats");
        document.getElementById("cards").innerHTML = ["pending","scheduled","active","retrying","dead","completed","failed"]
          .map(k => `<div class="card">${k}<b>${esc(s[k])}</b></div>`).join("");
        const q = await api("/queues");
        table(document.getElementById("queues"), ["queue","pending","scheduled","active","retrying","dead","completed","paused",""],
          q.queues.map(x => `<tr><td>${esc(x.name)}</td>` + ["pending","scheduled","active","retrying","dead","completed"].map(k => `<td>${esc(x.counts[k])}</td>`).join("") +
            `<td>${x.counts.paused ? "yes" : "no"}</td><td><button data-q="${esc(x.name)}" data-p="${x.counts.paused}">${x.counts.paused ? "resume" : "pause"}</button></td></tr>`));
        await history();
        const dlq = await api("/dlq?limit=20");
        table(document.getElementById("dlq"), ["id","type","queue","state","attempts","created","last error",""],
          dlq.jobs.map(j => jobRow(j) + `<td><button data-requeue="${esc(j.id)}">requeue</button></td></tr>`));
        const sc = await api("/schedules");
        table(document.getElementById("schedules"), ["name","when","zone","job","queue","paused","last run","next run",""],
          sc.schedules.map(x => `<tr><td>${esc(x.name)}</td><td><code>${esc(x.cron ?? ("every " + x.every))}</code></td><td>${esc(x.timezone)}</td>` +
            `<td>${esc(x.job.type)}</td><td>${esc(x.job.queue)}</td><td>${x.paused ? "yes" : "no"}</td><td>${esc(x.lastRunAt)}</td><td>${esc(x.nextRunAt)}</td>` +
            `<td><button data-s="${esc(x.name)}" data-sp="${x.paused}">${x.paused ? "resume" : "pause"}</button></td></tr>`));
      } catch (e) { document.getElementById("health").textContent = String(e); }
    }
    document.addEventListener("click", async e => {
      const b = e.target;
      if (b.dataset.requeue) { await api("/dlq/" + encodeURIComponent(b.dataset.requeue) + "/requeue", "POST"); refresh(); }
      if (b.dataset.s) { await api("/schedules/" + encodeURIComponent(b.dataset.s), "PATCH", {paused: b.dataset.sp !== "true"}); refresh(); }
      if (b.dataset.q) { await api("/queues/" + encodeURIComponent(b.dataset.q) + (b.dataset.p === "true" ? "/resume" : "/pause"), "POST"); refresh(); }
    });
    refresh(); setInterval(refresh, 3000);
    </script>
    </body></html>
    """#
}
