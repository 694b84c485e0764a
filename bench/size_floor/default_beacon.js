// The default configuration written by hand for size alone (bench/size.py), and with less than
// it: beacon is its only transport (no fetchLater arming, no keepalive, no fallback between
// them). Everything of beacon_leave.js, plus a page view per visit with the previous route or
// the cleaned referrer (another site's only as its origin) and outbound clicks (composedPath,
// left and middle button, links with a ping left to the browser, www and apex the same host).
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
    let newId = () => now().toString(36) + crypto.getRandomValues(new Uint32Array(2)).join("");
    let bare = (host) => host.replace(/^www\./, "");
    let own = (url) => bare(url.host) == bare(loc.host);
    let click = (event, link) => { link = event.composedPath().find((node) => /^http/.test(node.protocol)); link && event.button < 2 && !own(link) && !link.ping && send({v: 1, id: newId(), type: "outbound", url: route, ts: now(), target: clean(link.href)}) };
    on("click", click);
    on("auxclick", click);
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
    let start = (ref, url) => {
      route = clean(loc.href);
      visitId = newId();
      seq = shown = since = 0;
      sent = -1;
      visibleMs();
      send({v: 1, id: newId(), type: "pageview", url: route, ts: now(), ref: ref || ((ref = doc.referrer) && (own(url = new URL(ref)) ? clean(ref) : url.origin + "/"))});
    };
    let tryStart = () => !route && !doc.prerendering && !doc.hidden && (start(), flush());
    on("pagehide", () => { visitId && leave(); visitId = 0 });
    on("prerenderingchange", tryStart);
    on("visibilitychange", () => { visitId && (doc.hidden ? leave() : visibleMs()); tryStart() });
    on("pageshow", (event) => event.persisted && (route = 0, tryStart()));
    on("online", () => route && flush());
    tryStart();
    let onRoute = guard((ref) => { ref = route; ref && clean(loc.href) != ref && (leave(), start(ref)) });
    ["pushState", "replaceState"].map((name, original) => { original = history[name]; history[name] = (...args) => onRoute(original.apply(history, args)) });
    on("popstate", onRoute);
  } catch {}
})();
