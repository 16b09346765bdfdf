// js_on_load of a run's chips: each update re-renders them; keep the newest tokens in sight instead of jumping back
// to the top.
watch('value', () => { const p = element.querySelector('.pg-panel'); if (p) p.scrollTop = p.scrollHeight; });
