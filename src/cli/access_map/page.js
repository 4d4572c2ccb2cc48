// The access map's behaviour: the details of the cell in focus or under the
// pointer, keyboard moves in the matrix (one tab stop, arrow keys), the
// filters. Text goes into the page only through textContent.
(() => {
  'use strict';
  const data = JSON.parse(document.getElementById('data').textContent);
  const table = document.getElementById('map');
  const details = document.getElementById('details');
  const columns = Array.from(table.querySelectorAll('thead .dom th'), (th) => th.dataset.d);
  let current = table.querySelector('td[tabindex="0"]');

  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined) e.textContent = text;
    if (cls) e.className = cls;
    return e;
  };
  const levelOf = (td) => {
    for (const c of td.classList) if (c in data.levels) return data.levels[c];
    return data.levels.L0; // a cell without a level class is None
  };
  const para = (label, value, cls) => {
    const p = el('p', undefined, cls);
    p.append(el('strong', label + ': '), document.createTextNode(value));
    return p;
  };
  const listOf = (items, cls) => {
    const ul = el('ul', undefined, cls);
    for (const i of items) ul.append(el('li', i));
    return ul;
  };

  // What the details panel says of a cell.
  function show(td) {
    const tr = td.parentElement;
    const kind = tr.parentElement.dataset.kind === 'ApiKey' ? 'API key' : 'Member';
    const name = tr.querySelector('th .n').textContent;
    const phase = tr.dataset.ph;
    const domain = columns[td.cellIndex - 1];
    const level = levelOf(td);
    const facts = td.dataset.p === undefined ? null : data.cells[Number(td.dataset.p)];
    const parts = [];
    const who = el('p', undefined, 'who');
    who.append(el('strong', kind + ' ' + name));
    if (tr.dataset.i) who.append(document.createTextNode(' (' + tr.dataset.i + ')'));
    if (phase !== 'Active') {
      who.append(document.createTextNode(' \u2014 ' + phase + (kind === 'Member'
        ? ': holds no privileges until active'
        : ': the key is refused')));
    }
    parts.push(who);
    const what = el('p', undefined, 'what');
    what.append(el('strong', domain + ': '), el('span', level, 'level'));
    if (facts && facts.c !== undefined) what.append(document.createTextNode(', Can Create: ' + (facts.c ? 'yes' : 'no')));
    parts.push(what);
    if (facts && facts.r) {
      parts.push(el('p', 'Per resource:', 'resources-label'), listOf(facts.r, 'resources'));
    }
    if (facts && facts.g.length) {
      parts.push(el('p', 'Granted by:'), listOf(facts.g, 'granted'));
    } else {
      parts.push(el('p', facts ? 'Granted by: (no source recorded)' : 'Nothing grants it.', 'granted-none'));
    }
    if (facts && facts.m) {
      const m = facts.m;
      const words = {gained: '\u25B2 Gained', lost: '\u25BC Lost', changed: '\u25C6 Changed'};
      parts.push(para(words[m.k], 'before: ' + m.b, 'mark'));
      if (m.c.length) parts.push(el('p', 'Because of:'), listOf(m.c, 'causes'));
    }
    details.replaceChildren(...parts);
  }

  const rows = () => Array.from(table.tBodies).flatMap((tb) => tb.hidden ? [] : Array.from(tb.rows))
    .filter((tr) => !tr.hidden && tr.cells.length > 1);

  function focusCell(td) {
    if (!td) return;
    if (current && current !== td) {
      current.tabIndex = -1;
      current.removeAttribute('aria-describedby');
    }
    current = td;
    td.tabIndex = 0;
    td.focus();
  }

  table.addEventListener('focusin', (e) => {
    const td = e.target.closest('td');
    if (!td || !table.tBodies.length) return;
    if (current && current !== td) {
      current.tabIndex = -1;
      current.removeAttribute('aria-describedby');
    }
    current = td;
    td.tabIndex = 0;
    show(td);
    td.setAttribute('aria-describedby', 'details');
  });
  table.addEventListener('mouseover', (e) => {
    const td = e.target.closest('tbody td');
    if (td) show(td);
  });
  table.addEventListener('click', (e) => {
    const td = e.target.closest('tbody td');
    if (td) focusCell(td);
  });
  table.addEventListener('mouseleave', () => {
    if (current && document.activeElement === current) show(current);
  });
  table.addEventListener('keydown', (e) => {
    const td = e.target.closest('tbody td');
    if (!td) return;
    const tr = td.parentElement;
    const all = rows();
    const at = all.indexOf(tr);
    const col = td.cellIndex;
    const inRow = (r, c) => r && r.cells[Math.min(c, r.cells.length - 1)];
    let next = null;
    switch (e.key) {
      case 'ArrowRight': next = td.nextElementSibling; break;
      case 'ArrowLeft': next = td.previousElementSibling && td.previousElementSibling.tagName === 'TD' ? td.previousElementSibling : null; break;
      case 'ArrowDown': next = inRow(all[at + 1], col); break;
      case 'ArrowUp': next = at > 0 ? inRow(all[at - 1], col) : null; break;
      case 'PageDown': next = inRow(all[Math.min(at + 10, all.length - 1)], col); break;
      case 'PageUp': next = inRow(all[Math.max(at - 10, 0)], col); break;
      case 'Home': next = e.ctrlKey ? inRow(all[0], 1) : tr.cells[1]; break;
      case 'End': next = e.ctrlKey ? inRow(all[all.length - 1], col) : tr.cells[tr.cells.length - 1]; break;
      default: return;
    }
    e.preventDefault();
    focusCell(next);
  });

  // Filters: by name, identity or group; by a level held; by kind.
  const q = document.getElementById('q');
  const lvl = document.getElementById('lvl');
  const kind = document.getElementById('kind');
  const count = document.getElementById('count');
  const hay = new Map();
  for (const tb of table.tBodies) {
    for (const tr of tb.rows) {
      if (tr.cells.length > 1) {
        hay.set(tr, [tr.querySelector('th .n').textContent, tr.dataset.i, tr.dataset.g].join(' ').toLowerCase());
      }
    }
  }
  function apply() {
    const terms = q.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    const level = lvl.value;
    let shown = 0;
    for (const tb of table.tBodies) {
      tb.hidden = kind.value !== '' && tb.dataset.kind !== kind.value;
      for (const tr of tb.rows) {
        if (!hay.has(tr)) continue;
        const ok = !tb.hidden && terms.every((t) => hay.get(tr).includes(t))
          && (level === '' || tr.querySelector(level === 'mark' ? 'td.mg, td.ml, td.mc' : 'td.' + level) !== null);
        tr.hidden = !ok;
        if (ok) shown += 1;
      }
    }
    count.textContent = shown + ' of ' + hay.size + ' rows shown';
    // Keep the one tab stop on a visible cell.
    if (current && current.parentElement.hidden || current && current.closest('tbody').hidden) {
      const first = rows()[0];
      if (first) {
        current.tabIndex = -1;
        current = first.cells[1];
        current.tabIndex = 0;
      }
    }
  }
  for (const control of [q, lvl, kind]) control.addEventListener('input', apply);
  apply();
})();
