/** The HTML of the web page. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@crp/rag – ask the papers</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 16px; color: #222; }
form { display: flex; gap: 8px; margin-bottom: 16px; }
#question { flex: 1; font-size: 16px; padding: 8px; }
button { font-size: 16px; padding: 8px 16px; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) 660px; gap: 24px; }
#answer { font-size: 17px; line-height: 1.5; background: #f6f8fa; padding: 12px; border-radius: 6px; min-height: 1em; }
.unsupported { background: #ffe0e0; text-decoration: underline wavy #c00; }
.support { color: #555; font-size: 13px; margin: 2px 0 8px 16px; }
.source { border-top: 1px solid #ddd; padding: 8px 0; }
.source h3 { font-size: 15px; margin: 0 0 4px; }
.scores { color: #666; font-size: 12px; }
#status { color: #a00; min-height: 1.2em; }
svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>Ask the papers</h1>
<form id="ask-form">
  <input id="question" name="question" autocomplete="off" placeholder="e.g. Which rule does Zennit use for dense layers?" required maxlength="2000">
  <button id="ask" type="submit">Ask</button>
</form>
<div id="status" role="status"></div>
<div class="grid">
  <section>
    <h2>Answer <small id="mode"></small></h2>
    <div id="answer"></div>
    <div id="grounding"></div>
    <h2>Sources</h2>
    <div id="sources"></div>
  </section>
  <section>
    <h2>Why these sources</h2>
    <h3>Embedding map</h3>
    <div id="map"></div>
    <h3>Sentence heatmaps</h3>
    <div id="heatmaps"></div>
  </section>
</div>
<script type="module" src="/app.js"></script>
</body>
</html>
`;

/** The page's script: asks /api/ask and shows answer, grounding, sources and explanations. */
export const APP_JS = `
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
$('ask-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const question = $('question').value.trim();
  $('status').textContent = question ? 'Thinking…' : 'Please type a question.';
  if (!question) return;
  $('ask').disabled = true;
  try {
    const res = await fetch('/api/ask', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ question }) });
    const data = await res.json();
    if (!res.ok) { $('status').textContent = data.error ? data.error.message : 'Request failed'; return; }
    show(data);
    $('status').textContent = '';
  } catch (e) {
    $('status').textContent = 'Request failed: ' + e.message;
  } finally {
    $('ask').disabled = false;
  }
});
function show(a) {
  $('mode').textContent = '(' + a.mode + (a.grounded ? ', grounded' : ', not fully grounded') + ')';
  $('answer').innerHTML = a.sentences.map((s) => '<span class="' + (s.supported ? 'supported' : 'unsupported') + '">' + esc(s.text) + '</span>').join(' ') || esc(a.answer);
  $('grounding').innerHTML = a.sentences.map((s) => s.support
    ? '<div class="support">' + (s.supported ? '✔' : '✘ unsupported') + ' best support (source ' + s.support.source + ', score ' + s.support.score.toFixed(2) + '): “' + esc(s.support.sentence) + '”</div>'
    : '<div class="support">✘ no support found</div>').join('');
  const ex = a.explanation || { svg: { sentenceHeatmaps: [], keywords: [] } };
  $('sources').innerHTML = a.sources.map((s, i) =>
    '<div class="source" id="source-' + s.n + '"><h3>' + s.n + '. ' + esc(s.citation) + ' – ' + esc(s.title) + (s.section ? ' › ' + esc(s.section) : '') + '</h3>' +
    '<div class="scores">fused ' + s.score.toFixed(3) + ' · embedding ' + s.denseScore.toFixed(3) + ' · BM25 ' + s.lexicalScore.toFixed(2) + '</div>' +
    '<div class="keywords">' + (ex.svg.keywords[i] || '') + '</div></div>').join('');
  $('map').innerHTML = ex.svg.embeddingMap || '<p>(no map)</p>';
  $('heatmaps').innerHTML = ex.svg.sentenceHeatmaps.join('');
}
`;
