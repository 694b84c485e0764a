// The beacon, leave configuration written by hand for size alone (bench/size.py): only what issue
// 11 requires of it, nothing the templates add for other configurations, no comments inside.
// Once per document; nobody ignored; never throw; URL hygiene with the default keep_query and
// 2048-char clipping; the visible time of a visit, sent on hide, pagehide and route change,
// one id a visit with seq; a visit starts when first shown (prerender, background tab) and at
// each back-forward-cache restore; pushState/replaceState/popstate route changes; what
// sendBeacon refuses waits in a bounded localStorage queue (20 records, 32 KiB, 24 h, dropped
// count), sent as one array on the next load or `online`.
(() => {
  try {
    let endpoint = "/collect", doc = document, loc = location, now = Date.now, store = {};
    if (doc.sitebeacon) return;
    doc.sitebeacon = 1;
    try { store = localStorage } catch {}
    if (loc.protocol == "file:" || store.sitebeacon_ignore == "1") return;
    let guard = (handler) => (...args) => { try { return handler(...args) } catch {} };
    let on = (type, handler) => addEventListener(type, guard(handler), !0);
    let clean = (url) => (url = new URL(url), url.search = url.search.split(/[?&]/).filter((pair) => /^(utm_(source|medium|campaign|term|content)|ref)(=|$)/.test(pair)).join("&"), url.hash = "", url.href.slice(0, 2048).replace(/%.?$/, ""));
    let route, visitId, seq, shown, since, sent;
    let visibleMs = () => (shown += since && now() - since, since = !doc.hidden && now(), shown);
    let queued = (queue) => (queue = guard(JSON.parse)(store.sitebeacon_queue))?.push ? queue : [0];
    let keep = (rec, queue) => (queue = queued(), rec.data = {...rec.data, retried: 1}, queue[20] || JSON.stringify([...queue, rec]).length > 32768 ? queue[0]++ : queue.push(rec), store.sitebeacon_queue = JSON.stringify(queue));
    let beacon = guard((body) => navigator.sendBeacon(endpoint, body));
    let send = (rec) => (rec.transport = "beacon", beacon(JSON.stringify(rec)) || keep(rec));
    let flush = guard((queue, dropped) => {
      queue = queued();
      delete store.sitebeacon_queue;
      dropped = queue.shift();
      queue = queue.filter((rec) => now() - rec.ts < 864e5);
      queue[0] && (dropped && (queue[0].data.dropped = dropped), beacon(JSON.stringify(queue)) || queue.map(keep));
    });
    let leave = (ms) => (ms = visibleMs(), ms != sent && send({v: 1, id: visitId, type: "leave", url: route, ts: now(), seq: seq++, data: {visible_ms: sent = ms}}));
    let start = () => {
      route = clean(loc.href);
      visitId = now().toString(36) + crypto.getRandomValues(new Uint32Array(2)).join("");
      seq = shown = since = 0;
      sent = -1;
      visibleMs();
    };
    let tryStart = () => !route && !doc.prerendering && !doc.hidden && (start(), flush());
    on("pagehide", () => { visitId && leave(); visitId = 0 });
    on("prerenderingchange", tryStart);
    on("visibilitychange", () => { visitId && (doc.hidden ? leave() : visibleMs()); tryStart() });
    on("pageshow", (event) => event.persisted && (route = 0, tryStart()));
    on("online", () => route && flush());
    tryStart();
    let onRoute = guard((ref) => { ref = route; ref && clean(loc.href) != ref && (leave(), start()) });
    ["pushState", "replaceState"].map((name, original) => { original = history[name]; history[name] = (...args) => onRoute(original.apply(history, args)) });
    on("popstate", onRoute);
  } catch {}
})();
