// The dashboard page: draws the pictures the dispatcher streams on /events.
// Every number is computed by the dispatcher; this script only draws, and
// writes names with textContent, never as HTML.

const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

function filled(node, attributes, text) {
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

const element = (tag, attributes = {}, text = null) =>
  filled(document.createElement(tag), attributes, text);
const svgElement = (tag, attributes = {}, text = null) =>
  filled(document.createElementNS(SVG, tag), attributes, text);

const rate = (value) => (value === null || value === undefined ? "–" : value.toFixed(1));
const clock = (seconds) => new Date(seconds * 1000).toLocaleTimeString();

// -- the star ------------------------------------------------------------------

function drawStar(picture) {
  const star = $("star");
  star.replaceChildren();
  const here = picture.dispatchers.find((d) => d.here);
  const others = picture.dispatchers.filter((d) => !d.here);
  const hubs = new Map([[here.name, { x: 0, y: 0 }]]);
  others.forEach((d, i) => {
    const angle = (2 * Math.PI * i) / others.length - Math.PI / 2;
    hubs.set(d.name, { x: 95 * Math.cos(angle), y: 95 * Math.sin(angle) });
  });

  const seen = new Set();
  const placed = [];
  for (const service of picture.services) {
    const members = service.actors.filter((a) => !seen.has(a.name));
    members.forEach((a) => seen.add(a.name));
    if (members.length) placed.push({ service: service.name, actors: members });
  }
  const slots = placed.reduce((n, group) => n + group.actors.length + 1, 0) || 1;
  const step = (2 * Math.PI) / slots;
  let angle = -Math.PI / 2;
  const lines = svgElement("g");
  const nodes = svgElement("g");
  for (const group of placed) {
    const first = angle;
    for (const actor of group.actors) {
      const x = 215 * Math.cos(angle), y = 215 * Math.sin(angle);
      const hub = hubs.get(actor.dispatcher) || hubs.get(here.name);
      lines.append(svgElement("line", { x1: hub.x, y1: hub.y, x2: x, y2: y, class: actor.status }));
      const node = svgElement("g", { class: "star-actor", "data-actor": actor.name, "data-status": actor.status });
      node.append(svgElement("title", {}, `${actor.name}: ${actor.status}, ${actor.in_flight} in flight`));
      node.append(svgElement("circle", { cx: x, cy: y, r: 9, class: actor.status }));
      const outward = Math.cos(angle) >= 0;
      node.append(svgElement("text", {
        x: x + (outward ? 13 : -13), y: y + 4, "text-anchor": outward ? "start" : "end",
      }, actor.name));
      nodes.append(node);
      angle += step;
    }
    const middle = (first + angle - step) / 2;
    lines.append(svgElement("text", {
      x: 150 * Math.cos(middle), y: 150 * Math.sin(middle) + 4, "text-anchor": "middle", class: "service-label",
    }, group.service || "(no service)"));
    angle += step;
  }
  for (const [name, at] of hubs) {
    const isHere = name === here.name;
    nodes.append(svgElement("circle", { cx: at.x, cy: at.y, r: isHere ? 44 : 30, class: isHere ? "dispatcher" : "remote-dispatcher" }));
    nodes.append(svgElement("text", { x: at.x, y: at.y + 4, "text-anchor": "middle", class: "dispatcher-label" }, name));
  }
  star.append(lines, nodes);
}

// -- the tables ----------------------------------------------------------------

function drawDispatchers(picture) {
  const cards = picture.dispatchers.map((d) => {
    const card = element("div", { class: "dispatcher-card", "data-dispatcher": d.name });
    card.append(element("b", {}, d.name), `${d.status} · ${d.actors ?? "?"} actors · ${d.in_flight ?? "?"} in flight`);
    if (d.host) card.append(element("div", {}, `${d.host}:${d.pid}`));
    return card;
  });
  $("dispatchers").replaceChildren(...cards);
}

function actorRow(actor, federated) {
  const row = element("tr", { class: "actor", "data-actor": actor.name, "data-status": actor.status });
  const status = element("td");
  status.append(element("span", { class: `status ${actor.status}` }, actor.status));
  const errors = element("td", { class: "number" }, rate(actor.errors));
  if (actor.errors > 0) errors.classList.add("errors-high");
  row.append(
    element("td", { class: "name", title: actor.name }, actor.name),
    status,
    element("td", { class: "number in-flight" }, String(actor.in_flight)),
    element("td", { class: "number" }, rate(actor.rate)),
    errors,
  );
  if (federated) row.append(element("td", {}, actor.dispatcher ?? ""));
  return row;
}

const COLUMNS = [["actor", ""], ["status", ""], ["in flight", "number"], ["req/s", "number"], ["err/s", "number"]];

function drawServices(picture) {
  // One table, a group of rows per service: the columns line up and the
  // header is written once.  The dispatcher column shows only in a federation.
  const federated = picture.dispatchers.length > 1;
  const columns = federated ? [...COLUMNS, ["dispatcher", ""]] : COLUMNS;
  const table = element("table", { class: federated ? "federated" : "" });
  const head = element("tr");
  for (const [label, cls] of columns) head.append(element("th", cls ? { class: cls } : {}, label));
  table.append(element("thead"));
  table.tHead.append(head);
  for (const service of picture.services) {
    const group = element("tbody", { class: "service", "data-service": service.name });
    const title = element("th", { colspan: String(columns.length) });
    title.append(element("span", {}, service.name || "(no service)"),
      element("span", { class: "rates" }, `${rate(service.rate)} req/s · ${rate(service.errors)} err/s`));
    const titleRow = element("tr", { class: "service-title" });
    titleRow.append(title);
    group.append(titleRow, ...service.actors.map((actor) => actorRow(actor, federated)));
    table.append(group);
  }
  $("services").replaceChildren(table);
}

function drawEvents(picture) {
  const items = picture.events.map((event) => {
    const item = element("li", { class: event.event });
    item.append(element("time", {}, clock(event.at)));
    let text = `${event.name} ${event.event.replace("_", " ")}`;
    if (event.reason) text += `: ${event.reason}`;
    if (event.delay !== undefined) text += ` (in ${event.delay} s)`;
    item.append(text);
    return item;
  });
  $("events").replaceChildren(...(items.length ? items : [element("li", { class: "none" }, "none yet")]));
}

function drawTotals(picture) {
  const t = picture.totals;
  $("totals").textContent =
    `${t.actors} actors · ${t.busy} busy · ${t.dead} dead · ${t.in_flight} in flight · ${rate(t.rate)} req/s · ${rate(t.errors)} err/s`;
  const here = picture.dispatchers.find((d) => d.here);
  $("dispatcher-name").textContent = picture.network ? `${here.name} in ${picture.network}` : here.name;
}

// -- bags' routes (with a journal) ----------------------------------------------

function showTrace(query, button) {
  for (const chosen of document.querySelectorAll("#trace-keys button.chosen")) chosen.classList.remove("chosen");
  if (button) button.classList.add("chosen");
  const image = element("img", { src: `trace.svg?${query}`, alt: `the route of ${query}` });
  image.addEventListener("error", () => {
    fetch(`trace.svg?${query}`).then((r) => r.text()).then((why) => {
      $("trace-view").replaceChildren(element("p", { class: "none" }, why));
    });
  });
  $("trace-view").replaceChildren(image);
}

async function listTraces() {
  const answer = await fetch("traces.json?n=30");
  if (!answer.ok) {
    $("trace-keys").replaceChildren(element("li", { class: "none" }, await answer.text()));
    return;
  }
  const bags = await answer.json();
  const items = bags.map((bag) => {
    const button = element("button", { type: "button", "data-key": bag.key },
      `${bag.key} ${bag.service ?? ""}${bag.method ? "." + bag.method : ""} (${bag.hops} hops)`);
    button.addEventListener("click", () => showTrace(`key=${encodeURIComponent(bag.key)}`, button));
    const item = element("li");
    item.append(button);
    return item;
  });
  $("trace-keys").replaceChildren(...(items.length ? items : [element("li", { class: "none" }, "no bags yet")]));
}

let tracesShown = false;

function drawTraces(picture) {
  if (!picture.journal || tracesShown) return;
  tracesShown = true;
  $("traces-panel").hidden = false;
  $("trace-last").addEventListener("click", () => showTrace("last=1"));
  $("trace-refresh").addEventListener("click", listTraces);
  listTraces();
  showTrace("last=1");
}

// -- the stream ----------------------------------------------------------------

function draw(picture) {
  drawTotals(picture);
  drawStar(picture);
  drawDispatchers(picture);
  drawServices(picture);
  drawEvents(picture);
  drawTraces(picture);
  document.body.dataset.pictureAt = String(picture.at);
}

const stream = new EventSource("events");
stream.addEventListener("open", () => {
  $("connection").dataset.state = "live";
  $("connection").textContent = "live";
});
stream.addEventListener("error", () => {
  $("connection").dataset.state = "lost";
  $("connection").textContent = "reconnecting…";
});
stream.addEventListener("picture", (message) => draw(JSON.parse(message.data)));
