// js_on_load of a gr.HTML showing views_tree.animated_html (a draft tree, a diffusion canvas): draw the figure with
// Plotly.js and its frames (gr.Plot drops them), again whenever the value changes.
const draw = () => {
  const plot = element.querySelector('.pg-anim-plot'), data = element.querySelector('.pg-anim-data');
  if (!plot || !data || !window.Plotly) return;
  const fig = JSON.parse(data.textContent), names = fig.frames.map((f) => f.name);
  let current = names[fig.layout.sliders[0].active];
  Plotly.purge(plot);
  Plotly.newPlot(plot, fig.data, fig.layout, {displaylogo: false, responsive: true,
                 modeBarButtonsToRemove: ['select2d', 'lasso2d', 'autoScale2d']}).then(() => {
    Plotly.addFrames(plot, fig.frames);
    plot.on('plotly_animatingframe', (e) => { current = e.name; });
    plot.on('plotly_buttonclicked', (e) => {  // Play at the last frame plays the run again from its start
      if (e.button.label.includes('Play') && current === names[names.length - 1]) {
        Plotly.animate(plot, names, {...e.button.args[1], fromcurrent: false, mode: 'immediate'});
      }
    });
  });
};
draw();
watch('value', draw);
