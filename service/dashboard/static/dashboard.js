// bcwebhooks dashboard: refresh the server-rendered panels, draw the chart, send replays. No library.
"use strict";

const COLORS = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777",
  "#4b5563", "#65a30d", "#7c3aed", "#0d9488"];
const SVG = "http://www.w3.org/2000/svg";
const base = document.body.dataset.base;
const refreshMs = 1000 * Number(document.body.dataset.refreshSeconds || 2);
const colorOf = {};

function color(family) {
  if (!(family in colorOf)) colorOf[family] = COLORS[Object.keys(colorOf).length % COLORS.length];
  return colorOf[family];
}

function svg(name, attributes) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function drawChart() {
  const data = JSON.parse(document.getElementById("chart-data").textContent);
  const chart = document.getElementById("chart");
  const legend = document.getElementById("legend");
  const families = Object.keys(data.series);
  const slots = data.minutes.length;
  const totals = data.minutes.map((_, i) => families.reduce((sum, f) => sum + data.series[f][i], 0));
  const top = Math.max(1, ...totals);
  const width = 900, height = 200, left = 40, barWidth = (width - left) / slots;
  chart.replaceChildren();
  for (const fraction of [0, 0.5, 1]) {
    const y = height - fraction * (height - 10);
    chart.append(svg("line", {x1: left, x2: width, y1: y, y2: y, class: "grid"}));
    const label = svg("text", {x: left - 4, y: y + 4, class: "axis", "text-anchor": "end"});
    label.textContent = Math.round(fraction * top);
    chart.append(label);
  }
  data.minutes.forEach((minute, i) => {
    let y = height;
    for (const family of families) {
      const count = data.series[family][i];
      if (!count) continue;
      const h = (count / top) * (height - 10);
      y -= h;
      const bar = svg("rect", {x: left + i * barWidth + 1, y, width: barWidth - 2, height: h,
        fill: color(family), "data-family": family, "data-count": count});
      const title = svg("title", {});
      title.textContent = `${new Date(minute).toLocaleTimeString()}: ${count} ${family}`;
      bar.append(title);
      chart.append(bar);
    }
  });
  const time = svg("text", {x: width, y: 216, class: "axis", "text-anchor": "end"});
  time.textContent = "now";
  chart.append(time);
  legend.replaceChildren(...families.map((family) => {
    const item = document.createElement("span");
    item.className = "legend-item";
    item.innerHTML = `<i style="background:${color(family)}"></i>`;
    item.append(`${family} ${data.series[family].reduce((a, b) => a + b, 0)}`);
    return item;
  }));
}

function stamp(text) {
  document.querySelector("#updated time").textContent = new Date().toLocaleTimeString();
  document.getElementById("status").textContent = text || "";
}

async function refresh() {
  try {
    const response = await fetch(`${base}/panels`, {credentials: "same-origin", cache: "no-store"});
    if (response.status === 401) { window.location.assign(base); return; }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    document.getElementById("panels").innerHTML = await response.text();
    drawChart();
    stamp(pendingStatus);
  } catch (error) {
    stamp(`refresh failed (${error.message}); retrying`);
  }
}

let pendingStatus = "";

async function replay(button) {
  button.disabled = true;
  button.textContent = "Replaying…";
  try {
    const response = await fetch(`${base}/api/replay`, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({ids: [button.dataset.id]}),
    });
    const body = await response.json();
    pendingStatus = response.ok ? "replay requested: a worker replays it now" : `replay refused: ${body.message}`;
  } catch (error) {
    pendingStatus = `replay failed: ${error.message}`;
  }
  stamp(pendingStatus);
  setTimeout(() => { pendingStatus = ""; }, 3 * refreshMs);
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button.replay");
  if (button) replay(button);
});
drawChart();
stamp("");
setInterval(refresh, refreshMs);
