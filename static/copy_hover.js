// On hover of a drafted chip (data-src: its source position; data-span: "start end" of its copied span), light up
// the context chips (data-a..data-b: the positions each covers) of that span. One listener on the document serves
// every copy view, whenever it is (re)drawn.
if (!window.pgCopyHover) {
  window.pgCopyHover = true;
  const mark = (chip, on) => {
    const box = chip.closest('.pg-copy');
    if (!box) return;
    const [a, b] = chip.dataset.span.split(' ').map(Number);
    const src = Number(chip.dataset.src);
    let first = null;
    box.querySelectorAll('.pg-ctx').forEach((c) => {
      const ca = Number(c.dataset.a), cb = Number(c.dataset.b);
      const inSpan = on && ca < b && cb > a;
      c.classList.toggle('pg-src-span', inSpan);
      c.classList.toggle('pg-src-tok', on && ca <= src && src < cb);
      if (inSpan && !first) first = c;
    });
    chip.classList.toggle('pg-src-from', on);
    const panel = box.querySelector('.pg-ctx-panel');
    if (first && panel) {
      const top = first.offsetTop - panel.offsetTop;
      if (top < panel.scrollTop || top > panel.scrollTop + panel.clientHeight - 20) panel.scrollTop = top - 20;
    }
  };
  const chipOf = (e) => e.target.closest && e.target.closest('.pg-copy [data-src]');
  document.addEventListener('mouseover', (e) => { const c = chipOf(e); if (c) mark(c, true); });
  document.addEventListener('mouseout', (e) => { const c = chipOf(e); if (c) mark(c, false); });
}
