/* Charts of the public dashboard (ECharts, vendored). Reads the figures the page embeds as JSON. */
(function () {
  "use strict";
  var node = document.getElementById("dashboard-data");
  if (!node || !window.echarts) { return; }
  var d = JSON.parse(node.textContent);
  var s = d.series || {};
  var L = d.labels || {};
  var green = "#2e7d32", light = "#81c784", amber = "#f9a825", blue = "#1565c0", grey = "#9e9e9e";
  var charts = [];

  function make(id, option) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var c = echarts.init(el, null, { renderer: "canvas" });
    c.setOption(option);
    charts.push(c);
  }
  function fmt(v) { return v === null || v === undefined ? "—" : Number(v).toLocaleString(); }
  var months = s.months || [];

  make("chart-generation", {
    tooltip: { trigger: "axis", valueFormatter: fmt },
    legend: { top: 0, type: "scroll", data: [L.generation, L.er] },
    grid: { left: 70, right: 70, top: 56, bottom: 30 },
    xAxis: { type: "category", data: months },
    yAxis: [{ type: "value", name: "kWh" }, { type: "value", name: "kg CO2e" }],
    series: [
      { name: L.generation, type: "bar", data: s.generation_kwh || [], itemStyle: { color: light } },
      { name: L.er, type: "line", yAxisIndex: 1, data: s.er_kg || [], itemStyle: { color: green }, connectNulls: false }
    ]
  });

  make("chart-capacity", {
    tooltip: { trigger: "axis", valueFormatter: fmt },
    legend: { top: 0, type: "scroll", data: [L.capacity, L.systems] },
    grid: { left: 60, right: 50, top: 56, bottom: 30 },
    xAxis: { type: "category", data: months },
    yAxis: [{ type: "value", name: "kWp" }, { type: "value", name: L.systems, minInterval: 1 }],
    series: [
      { name: L.capacity, type: "line", step: "end", areaStyle: { opacity: 0.15 }, data: s.capacity_kwp || [], itemStyle: { color: green } },
      { name: L.systems, type: "line", step: "end", yAxisIndex: 1, data: s.systems || [], itemStyle: { color: grey } }
    ]
  });

  make("chart-units", {
    tooltip: { trigger: "axis", valueFormatter: fmt },
    legend: { top: 0, type: "scroll", data: [L.issued, L.transferred, L.retired] },
    grid: { left: 50, right: 20, top: 56, bottom: 30 },
    xAxis: { type: "category", data: months },
    yAxis: { type: "value", name: "t", minInterval: 1 },
    series: [
      { name: L.issued, type: "bar", data: s.issued || [], itemStyle: { color: green } },
      { name: L.transferred, type: "bar", data: s.transferred || [], itemStyle: { color: blue } },
      { name: L.retired, type: "bar", data: s.retired || [], itemStyle: { color: amber } }
    ]
  });

  if (d.market) {
    make("chart-market", {
      tooltip: { trigger: "axis", valueFormatter: fmt },
      legend: { top: 0, type: "scroll", data: [L.volume, L.avg_price, L.close] },
      grid: { left: 60, right: 70, top: 56, bottom: 30 },
      xAxis: { type: "category", data: months },
      yAxis: [{ type: "value", name: "t", minInterval: 1 }, { type: "value", name: "CNY/t" }],
      series: [
        { name: L.volume, type: "bar", data: s.market_volume_t || [], itemStyle: { color: light } },
        { name: L.avg_price, type: "line", yAxisIndex: 1, data: s.market_avg_price || [], itemStyle: { color: blue } },
        { name: L.close, type: "line", yAxisIndex: 1, data: s.market_close || [], itemStyle: { color: amber }, lineStyle: { type: "dashed" } }
      ]
    });
  }

  // Map: areas (k-anonymous) and community centres on a longitude/latitude grid with equal scale.
  var pts = (d.communities || []).concat(d.areas || []);
  if (pts.length) {
    var lons = pts.map(function (p) { return p.lon; }), lats = pts.map(function (p) { return p.lat; });
    var pad = 0.01;
    var minLon = Math.min.apply(null, lons) - pad, maxLon = Math.max.apply(null, lons) + pad;
    var minLat = Math.min.apply(null, lats) - pad, maxLat = Math.max.apply(null, lats) + pad;
    var el = document.getElementById("chart-map");
    if (el) {
      // keep 1° of longitude = cos(lat) × 1° of latitude on screen
      var k = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
      var w = el.clientWidth - 90, h = w * (maxLat - minLat) / ((maxLon - minLon) * k);
      el.style.height = Math.max(260, Math.min(620, h + 70)) + "px";
    }
    var maxCap = Math.max.apply(null, (d.areas || []).map(function (a) { return a.capacity_kwp; }).concat([1]));
    make("chart-map", {
      tooltip: {
        formatter: function (p) {
          var v = p.data.raw;
          if (p.seriesIndex === 0) { return v.name; }
          return v.name + "<br>" + fmt(v.systems) + " " + L.systems_short + " · " + fmt(v.capacity_kwp) + " " + L.capacity_short;
        }
      },
      legend: { top: 0, type: "scroll", data: [L.community, L.area] },
      grid: { left: 60, right: 20, top: 56, bottom: 44 },
      xAxis: { type: "value", min: minLon.toFixed(3), max: maxLon.toFixed(3), name: L.longitude, nameLocation: "middle", nameGap: 26, axisLabel: { formatter: function (v) { return v.toFixed(2); } }, splitLine: { lineStyle: { color: "#eee" } } },
      yAxis: { type: "value", min: minLat.toFixed(3), max: maxLat.toFixed(3), name: L.latitude, axisLabel: { formatter: function (v) { return v.toFixed(2); } }, splitLine: { lineStyle: { color: "#eee" } } },
      series: [
        {
          name: L.community, type: "scatter", symbolSize: 6, itemStyle: { color: grey },
          label: { show: true, position: "right", color: "#757575", fontSize: 10, formatter: function (p) { return p.data.raw.name; } },
          data: (d.communities || []).map(function (c) { return { value: [c.lon, c.lat], raw: c }; })
        },
        {
          name: L.area, type: "scatter", itemStyle: { color: green, opacity: 0.55, borderColor: "#1b5e20" },
          symbolSize: function (v, p) { return 18 + 42 * Math.sqrt(p.data.raw.capacity_kwp / maxCap); },
          label: { show: true, position: "inside", color: "#fff", fontWeight: "bold", formatter: function (p) { return p.data.raw.systems; } },
          data: (d.areas || []).map(function (a) { return { value: [a.lon, a.lat], raw: a }; })
        }
      ]
    });
  }

  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
