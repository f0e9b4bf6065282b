// The dashboard's two charts (trend and ranking), from the JSON the page carries in
// #chart-data. A file of its own: the console's Content-Security-Policy runs no inline script.
(function () {
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var font = {fontFamily: "Noto Sans CJK SC, sans-serif"};
  var trend = echarts.init(document.getElementById("trend-chart"), null, {renderer: "svg"});
  trend.setOption({
    textStyle: font, animation: false, tooltip: {trigger: "axis"},
    grid: {left: 48, right: 16, top: 20, bottom: 30},
    xAxis: {type: "category", data: data.trend.labels},
    yAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
    series: [{name: data.series, type: "line", data: data.trend.rates, connectNulls: false, label: {show: true, formatter: "{c}%"}}]
  });
  var ranking = echarts.init(document.getElementById("ranking-chart"), null, {renderer: "svg"});
  ranking.setOption({
    textStyle: font, animation: false, tooltip: {},
    grid: {left: 110, right: 40, top: 10, bottom: 20},
    xAxis: {type: "value", max: 100, axisLabel: {formatter: "{value}%"}},
    yAxis: {type: "category", data: data.ranking.names},
    series: [{name: data.series, type: "bar", data: data.ranking.rates, label: {show: true, position: "right", formatter: "{c}%"}}]
  });
  window.addEventListener("resize", function () { trend.resize(); ranking.resize(); });
  document.body.dataset.chartsReady = "yes";
})();
