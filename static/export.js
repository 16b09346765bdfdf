// The player of a run exported as one page (playground/share/page.py). The page holds the run's views after each
// frame's steps (#pg-run-data: each part's value by index, every distinct value once); the player swaps them in
// place, draws the charts with the inlined Plotly.js, and runs each view's own script from static/ as the app does
// (window.pgPartScripts: a function of the part's element and a watch() called back when its value changes).
(() => {
  const data = JSON.parse(document.getElementById('pg-run-data').textContent);
  const frames = data.frames, values = data.values, last = frames.length - 1;
  const boxes = {}, watchers = {}, shown = {};
  document.querySelectorAll('[data-part]').forEach((box) => {
    boxes[box.dataset.part] = box;
    watchers[box.dataset.part] = [];
  });
  const slider = document.getElementById('pg-position'), at = document.getElementById('pg-at');
  const pace = document.getElementById('pg-pace');
  const config = {displaylogo: false, responsive: true};
  const whole = [];  // index -> the value, its delta from an earlier one applied (playground/share/page.py _Values)
  const value = (i) => {
    if (whole[i] === undefined) {
      const v = values[i];
      if (v && v.delta) {
        const [base, keep, tail, text] = v.delta, from = value(base);
        whole[i] = from.slice(0, keep) + text + from.slice(from.length - tail);
      } else whole[i] = v;
    }
    return whole[i];
  };
  let current = last, timer = null;

  const put = (name, index) => {  // after every part's visibility is set: a chart takes the width it will keep
    const box = boxes[name];
    if (!box || shown[name] === index || index === null || index === undefined) return;
    shown[name] = index;
    const shownValue = value(index);
    if (box.dataset.kind === 'figure') {
      if (window.Plotly) Plotly.react(box, shownValue.data, shownValue.layout, config);
    } else {
      box.innerHTML = shownValue;
      watchers[name].forEach((fn) => fn());
    }
  };

  const go = (i) => {
    current = Math.max(0, Math.min(last, i));
    const frame = frames[current];
    Object.entries(frame.parts).forEach(([name, index]) => {
      if (boxes[name]) boxes[name].parentElement.hidden = index === null || index === undefined;
    });
    Object.entries(frame.parts).forEach(([name, index]) => put(name, index));
    slider.value = current;
    at.textContent = `step ${frame.steps} of ${data.steps}`;
    document.body.dataset.frame = current;
    document.body.dataset.steps = frame.steps;
  };

  const pause = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    document.body.dataset.playing = 'no';
  };

  const play = () => {  // at the pace the run ran (the recorded steps' own times), or a frame every 0.3 s
    pause();
    if (current >= last) go(0);
    document.body.dataset.playing = 'yes';
    const every = pace.value === 'run' ? null : Number(pace.value);
    const begun = performance.now() - (every === null ? frames[current].t * 1000 : 0);
    const from = current;
    const tick = () => {
      const seconds = (performance.now() - begun) / 1000;
      let next = current;
      if (every !== null) next = from + Math.floor(seconds / every);
      else while (next < last && frames[next + 1].t <= seconds) next += 1;
      if (next !== current) go(next);
      if (current >= last) pause();
      else timer = setTimeout(tick, every === null ? 50 : 100);
    };
    timer = setTimeout(tick, 50);
  };

  slider.max = last;
  go(last);
  document.querySelectorAll('[data-script]').forEach((box) => {
    const script = (window.pgPartScripts || {})[box.dataset.script];
    if (script) script(box, (_, fn) => watchers[box.dataset.part].push(fn));
  });
  slider.addEventListener('input', () => { pause(); go(Number(slider.value)); });
  document.getElementById('pg-first').addEventListener('click', () => { pause(); go(0); });
  document.getElementById('pg-back').addEventListener('click', () => { pause(); go(current - 1); });
  document.getElementById('pg-step').addEventListener('click', () => { pause(); go(current + 1); });
  document.getElementById('pg-last').addEventListener('click', () => { pause(); go(last); });
  document.getElementById('pg-play').addEventListener('click', play);
  document.getElementById('pg-pause').addEventListener('click', pause);
  document.body.dataset.ready = 'yes';
})();
