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
.lang { display: inline-block; font-size: 12px; font-weight: 600; color: #fff; background: #5470c6; border-radius: 4px; padding: 1px 6px; margin-left: 6px; vertical-align: middle; }
.lang.de { background: #c0392b; }
.quotation { border-left: 3px solid #9aa7b0; padding-left: 4px; }
.quotation::before { content: '“'; color: #777; }
.quotation::after { content: '”'; color: #777; }
.unsupported { background: #ffe0e0; text-decoration: underline wavy #c00; }
.support { color: #555; font-size: 13px; margin: 2px 0 8px 16px; }
.source { border-top: 1px solid #ddd; padding: 8px 0; }
.source h3 { font-size: 15px; margin: 0 0 4px; }
.source pre { background: #272822; color: #f8f8f2; padding: 8px; border-radius: 4px; overflow-x: auto; font-size: 12px; }
.source p { margin: 4px 0; font-size: 14px; }
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
    <h2>Answer <small id="mode"></small> <span id="answer-lang"></span></h2>
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

/** The page's script: asks /api/ask and shows answer, grounding, sources (with languages) and explanations. */
export const APP_JS = `
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const LANG = { en: 'English', de: 'German' };
const lang = (l, cls) => '<span class="lang ' + esc(l) + '" data-lang="' + esc(l) + '"' + (cls ? ' id="' + cls + '"' : '') + ' title="' + esc(LANG[l] || l) + '">' + esc(LANG[l] || l) + '</span>';
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
function sourceBody(s) {
  const blocks = s.blocks || [{ kind: 'paragraph', start: 0, end: s.text.length }];
  return blocks.map((b) => {
    const t = s.text.slice(b.start, b.end);
    return b.kind === 'code' ? '<pre><code>' + esc(t) + '</code></pre>' : b.kind === 'heading' ? '<p><b>' + esc(t) + '</b></p>' : '<p>' + esc(t) + '</p>';
  }).join('');
}
function show(a) {
  $('mode').textContent = '(' + a.mode + (a.grounded ? ', grounded' : ', not fully grounded') + ')';
  $('answer-lang').innerHTML = lang(a.language, 'answer-language') + (a.questionLanguage !== a.language ? ' <small>question: ' + esc(LANG[a.questionLanguage] || a.questionLanguage) + '</small>' : '');
  $('answer').innerHTML = a.sentences.map((s) => '<span class="' + esc(s.label) + '">' + esc(s.text) + '</span>').join(' ') || esc(a.answer || '(no answer found)');
  $('grounding').innerHTML = a.sentences.map((s) => {
    if (s.label === 'quotation') return '<div class="support">❝ quoted from source ' + s.support.source + '</div>';
    if (s.label === 'no-claim') return '<div class="support">· no claim to check</div>';
    const sup = s.support ? ' best support (source ' + s.support.source + ', score ' + s.support.score.toFixed(2) + '): “' + esc(s.support.sentence) + '”' : '';
    return '<div class="support">' + (s.supported ? '✔ supported;' : '✘ unsupported' + (s.notes ? ' (' + esc(s.notes.join('; ')) + ')' : '') + ';') + sup + '</div>';
  }).join('');
  const ex = a.explanation || { svg: { sentenceHeatmaps: [], keywords: [] } };
  $('sources').innerHTML = a.sources.map((s, i) =>
    '<div class="source" id="source-' + s.n + '"><h3>' + s.n + '. ' + esc(s.citation) + ' – ' + esc(s.title) + (s.section && s.section !== s.title ? ' › ' + esc(s.section.startsWith(s.title + ' > ') ? s.section.slice(s.title.length + 3) : s.section) : '') + ' ' + lang(s.language) + '</h3>' +
    '<div class="scores">fused ' + s.score.toFixed(3) + ' · embedding ' + s.denseScore.toFixed(3) + ' · BM25 ' + s.lexicalScore.toFixed(2) + '</div>' +
    '<div class="keywords">' + (ex.svg.keywords[i] || '') + '</div>' +
    '<details><summary>text</summary>' + sourceBody(s) + '</details></div>').join('');
  $('map').innerHTML = ex.svg.embeddingMap || '<p>(no map)</p>';
  $('heatmaps').innerHTML = ex.svg.sentenceHeatmaps.join('');
}
`;
