(function () {
  var pages = Array.prototype.slice.call(document.querySelectorAll('main .ll-page'))
    .filter(function (p) { return !p.parentElement.closest('.ll-page'); });
  var bar = document.getElementById('ll-walk-bar'), where = document.getElementById('ll-walk-where');
  var at = 0;
  function host(p) { return p.closest('main > section') || p; }
  function show(k) {
    at = Math.max(0, Math.min(pages.length - 1, k));
    pages.forEach(function (p, j) { p.classList.toggle('ll-current', j === at); });
    document.querySelectorAll('main > section').forEach(function (s) { s.classList.remove('ll-host'); });
    host(pages[at]).classList.add('ll-host');
    where.textContent = (at + 1) + ' / ' + pages.length + ' — ' + (pages[at].getAttribute('data-title') || '');
    window.scrollTo(0, 0);
    if (history.replaceState) { history.replaceState(null, '', '#page-' + (at + 1)); }
  }
  function walk(on) {
    document.body.classList.toggle('ll-walk', on);
    if (on) { show(at); }
  }
  function pageOf(el) {
    for (var j = 0; j < pages.length; j++) { if (pages[j] === el || pages[j].contains(el)) { return j; } }
    return -1;
  }
  document.addEventListener('keydown', function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var on = document.body.classList.contains('ll-walk');
    if (e.key === 'w') { walk(!on); e.preventDefault(); return; }
    if (!on) { return; }
    var keys = {ArrowRight: 1, PageDown: 1, ' ': 1, n: 1, ArrowLeft: -1, PageUp: -1, p: -1, Backspace: -1};
    if (e.key in keys) { show(at + keys[e.key]); e.preventDefault(); }
    else if (e.key === 'Home') { show(0); e.preventDefault(); }
    else if (e.key === 'End') { show(pages.length - 1); e.preventDefault(); }
    else if (e.key === 'Escape') { walk(false); }
  });
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a[href^="#"]');
    if (!a || !document.body.classList.contains('ll-walk')) { return; }
    var el = document.getElementById(decodeURIComponent(a.getAttribute('href').slice(1)));
    var j = el ? pageOf(el) : -1;
    if (j >= 0) { e.preventDefault(); show(j); }
  });
  var start = document.getElementById('ll-walk-start');
  if (start) { start.addEventListener('click', function () { walk(true); }); }
  ['ll-walk-prev', 'll-walk-next', 'll-walk-exit'].forEach(function (id, i) {
    document.getElementById(id).addEventListener('click', function () {
      if (i === 2) { walk(false); } else { show(at + (i === 0 ? -1 : 1)); }
    });
  });
  var m = /^#page-(\d+)$/.exec(location.hash);
  if (m) { at = parseInt(m[1], 10) - 1; walk(true); }
  else if (location.hash === '#walkthrough') { walk(true); }
}());
