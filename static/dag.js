// js_on_load of the gr.HTML showing `dag_html`: draw the graph; the sliders prune it without a server round trip
// (the decoded path always stays); a click on a vertex shows its details (HTML escaped by dag_html) and rings it.
const draw = () => {
  const box = element.querySelector('.pg-dag');
  if (!box || !window.Plotly) return;
  const plot = box.querySelector('.pg-anim-plot'), details = box.querySelector('.pg-dag-details');
  const fig = JSON.parse(box.querySelector('.pg-anim-data').textContent), dag = fig.dag;
  const cut = (name) => box.querySelector(`input[data-prune=${name}]`);
  const onPath = new Set(dag.path), pathEdges = new Set(dag.path.slice(1).map((v, i) => `${dag.path[i]}-${v}`));
  let selected = null;
  const pick = (t, ok) => {  // the trace with only the points whose customdata ok() keeps
    const at = t.customdata.map((c, i) => (ok(c) ? i : -1)).filter((i) => i >= 0);
    const out = t.marker ? {...t, marker: {...t.marker}} : {...t};
    for (const key of ['x', 'y', 'text', 'customdata', 'textposition']) {
      if (Array.isArray(t[key])) out[key] = at.map((i) => t[key][i]);
    }
    for (const key of ['size', 'color']) {
      if (t.marker && Array.isArray(t.marker[key])) out.marker[key] = at.map((i) => t.marker[key][i]);
    }
    return out;
  };
  const update = () => {
    const v = +cut('vertices').value, e = +cut('edges').value;
    const keep = dag.passing.map((p, j) => p >= v || onPath.has(j));
    const edgeOk = (c) => keep[c[0]] && keep[c[1]] && (c[2] >= e || pathEdges.has(`${c[0]}-${c[1]}`));
    if (selected !== null && !keep[selected]) selected = null;
    const data = fig.data.map((t) => t.meta === 'vertices' ? pick(t, (c) => keep[c[0]])
      : t.meta === 'edges' ? pick(t, edgeOk)
      : t.meta === 'selected' ? {...t, x: selected === null ? [] : [selected],
                                 y: selected === null ? [] : [dag.rows[selected]]} : t);
    box.querySelector('output[data-for=vertices]').textContent = v.toFixed(2);
    box.querySelector('output[data-for=edges]').textContent = e.toFixed(2);
    const vertices = keep.filter(Boolean).length, edges = dag.edges.filter(edgeOk).length;
    const count = box.querySelector('.pg-dag-count');
    count.dataset.shownVertices = vertices;
    count.dataset.shownEdges = edges;
    count.textContent = `${vertices} of ${dag.passing.length} vertices · ${edges} of ${dag.edges.length} ` +
                        'transitions shown (the decoded path always)';
    return Plotly.react(plot, data, fig.layout, fig.config);
  };
  Plotly.purge(plot);
  Plotly.newPlot(plot, fig.data, fig.layout, fig.config).then(() => {
    update();
    plot.on('plotly_click', (ev) => {
      const point = ev.points.find((p) => p.data.meta === 'vertices');
      if (!point) return;
      selected = point.customdata[0];
      details.innerHTML = dag.details[selected];
      details.dataset.vertex = selected;
      update();
    });
  });
  for (const name of ['vertices', 'edges']) cut(name).addEventListener('input', update);
};
draw();
watch('value', draw);
