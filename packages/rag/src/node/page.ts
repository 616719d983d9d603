/** The HTML of the web page. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>@crp/rag – ask the papers</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<style>
* { box-sizing: border-box; }
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1400px; padding: 16px; color: #222; overflow-wrap: anywhere; }
form { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 8px; margin-bottom: 4px; }
/* a long question wraps and the box grows with it (up to 40% of the screen, then it scrolls) */
#question { flex: 1 1 240px; min-width: 0; font: 16px/1.4 system-ui, sans-serif; padding: 8px; resize: vertical; max-height: 40vh; overflow-y: hidden; }
button { font-size: 16px; padding: 8px 16px; }
#count { color: #666; font-size: 12px; min-height: 1.2em; }
#count.over { color: #a00; font-weight: 600; }
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 660px); gap: 24px; }
@media (max-width: 900px) {
  .grid { grid-template-columns: minmax(0, 1fr); }
  /* a heatmap shrunk to a phone's width had 7 px text: it keeps its size and scrolls sideways instead */
  #heatmaps { overflow-x: auto; }
  #heatmaps svg { max-width: none; }
  h1 { font-size: 24px; }
  body { padding: 8px; }
}
.context { color: #666; }
.highlight { background: #fff3b0; }
.note { font-style: italic; margin-bottom: 4px; }
.gloss { color: #555; font-size: 13px; margin: 4px 0; }
.gloss b { font-weight: 600; }
.gloss-line { margin: 2px 0 0 8px; }
#answer { font-size: 17px; line-height: 1.5; background: #f6f8fa; padding: 12px; border-radius: 6px; min-height: 1em; }
.lang { display: inline-block; font-size: 12px; font-weight: 600; color: #fff; background: #5470c6; border-radius: 4px; padding: 1px 6px; margin-left: 6px; vertical-align: middle; }
.lang.de { background: #c0392b; }
.quotation { border-left: 3px solid #9aa7b0; padding-left: 4px; }
.quotation::before { content: '“'; color: #777; }
.quotation::after { content: '”'; color: #777; }
/* a code block of the answer keeps its lines: it scrolls inside the answer, never widening the page */
#answer pre { margin: 6px 0 2px; padding: 6px 8px; font-size: 13px; line-height: 1.4; background: #fff; border: 1px solid #d0d7de; border-left: 3px solid #9aa7b0; border-radius: 4px; overflow-x: auto; white-space: pre; overflow-wrap: normal; }
#answer pre.highlight { background: #fff3b0; }
#answer pre.context { color: #555; }
#answer pre.quotation::before, #answer pre.quotation::after { content: none; }
#answer .cite { color: #555; }
#answer pre + .cite { display: inline-block; margin-bottom: 4px; }
.streaming::after { content: '▍'; color: #888; }
.unsupported { background: #ffe0e0; text-decoration: underline wavy #c00; }
.support { color: #555; font-size: 13px; margin: 2px 0 8px 16px; }
.source { border-top: 1px solid #ddd; padding: 8px 0; }
.source h3 { font-size: 15px; margin: 0 0 4px; }
.source pre { background: #272822; color: #f8f8f2; padding: 8px; border-radius: 4px; overflow-x: auto; font-size: 12px; }
.source p { margin: 4px 0; font-size: 14px; }
.source p.footnote { font-size: 12px; color: #555; border-left: 2px solid #ccc; padding-left: 6px; }
.footnote-label { font-weight: bold; }
.scores { color: #666; font-size: 12px; }
#status { color: #a00; min-height: 1.2em; }
svg { max-width: 100%; height: auto; }
</style>
</head>
<body>
<h1>Ask the papers</h1>
<form id="ask-form">
  <textarea id="question" name="question" rows="1" autocomplete="off" placeholder="e.g. Which rule does Zennit use for dense layers?" aria-label="Question (Enter asks, Shift+Enter starts a new line)" title="Enter asks; Shift+Enter starts a new line" required></textarea>
  <button id="ask" type="submit">Ask</button>
</form>
<div id="count" aria-live="polite"></div>
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
const MAX = 2000;
// a long question is never cut: the page says how long it is and what is allowed
function countChars() {
  const n = $('question').value.trim().length;
  const over = n > MAX;
  $('count').className = over ? 'over' : '';
  $('count').textContent = over ? 'Your question has ' + n + ' characters; at most ' + MAX + ' are allowed. Please shorten it.' : n > MAX * 0.8 ? n + ' / ' + MAX + ' characters' : '';
  $('ask').disabled = over;
  return !over;
}
// the box is as high as its text (a 2,000-character question in one line could not be read)
function fitQuestion() {
  const q = $('question');
  q.style.height = 'auto';
  q.style.height = q.scrollHeight + 2 + 'px';
  q.style.overflowY = q.scrollHeight > q.clientHeight + 1 ? 'auto' : 'hidden';
}
$('question').addEventListener('input', () => { countChars(); fitQuestion(); });
// Enter asks, as in a one-line box; Shift+Enter a new line (an input method composing a word keeps its Enter)
$('question').addEventListener('keydown', (ev) => {
  if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing) return;
  ev.preventDefault();
  $('ask-form').requestSubmit();
});
window.addEventListener('resize', fitQuestion);
const lang = (l, cls) => '<span class="lang ' + esc(l) + '" data-lang="' + esc(l) + '"' + (cls ? ' id="' + cls + '"' : '') + ' title="' + esc(LANG[l] || l) + '">' + esc(LANG[l] || l) + '</span>';
$('ask-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const question = $('question').value.trim();
  $('status').textContent = question ? 'Thinking…' : 'Please type a question.';
  if (!question || !countChars()) return;
  $('ask').disabled = true;
  const ask = (body) => fetch('/api/ask', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ question, ...body }) });
  try {
    // the answer first, streamed while a model writes it; the explanation views (map, heatmaps, keywords)
    // come after it, from a request that does not run the model again
    // on a failure the previous question's answer, sources and map must not stand under this question's error
    let data;
    try {
      const res = await ask({ explain: false, stream: true });
      if (!res.ok) { const err = await res.json().catch(() => ({})); clearResults(); $('status').textContent = err.error ? err.error.message : 'Request failed (HTTP ' + res.status + ')'; return; }
      data = (res.headers.get('content-type') || '').startsWith('text/event-stream') ? await readEvents(res) : await res.json();
    } catch (e) {
      clearResults();
      $('status').textContent = 'Request failed: ' + e.message;
      return;
    }
    show(data);
    $('map').innerHTML = '<p>computing the map…</p>';
    $('heatmaps').innerHTML = '';
    $('status').textContent = '';
    const more = await ask({ explain: true, generate: false });
    if (more.ok && $('question').value.trim() === question) explain(await more.json());
  } catch (e) {
    $('status').textContent = 'Request failed: ' + e.message;
  } finally {
    $('ask').disabled = false;
    countChars();
  }
});
// server-sent events of POST /api/ask: 'token' pieces are shown as they come (not yet checked); 'answer' is
// the finished answer, each sentence checked against the sources, which show() then draws
async function readEvents(res) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let written = '';
  let answer;
  $('answer').textContent = '';
  $('grounding').innerHTML = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\\n\\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const name = (/^event: (.*)$/m.exec(block) || [])[1];
      const data = JSON.parse((/^data: (.*)$/m.exec(block) || [])[1] || 'null');
      if (name === 'token') {
        written += data.text;
        $('answer').className = 'streaming';
        $('answer').textContent = written;
        $('mode').textContent = '(writing… the check against the sources follows)';
        $('status').textContent = '';
      } else if (name === 'answer') answer = data;
      else if (name === 'error') throw new Error(data.error.message);
    }
  }
  $('answer').className = '';
  if (!answer) throw new Error('the answer stream ended early');
  return answer;
}
function clearResults() {
  for (const id of ['mode', 'answer-lang', 'answer', 'grounding', 'sources', 'map', 'heatmaps']) $(id).innerHTML = '';
  $('answer').className = '';
}
function sourceBody(s) {
  const blocks = s.blocks || [{ kind: 'paragraph', start: 0, end: s.text.length }];
  return blocks.map((b) => {
    const t = s.text.slice(b.start, b.end);
    if (b.kind === 'note') return '<p class="footnote"><span class="footnote-label">Footnote:</span> ' + esc(t) + '</p>';
    return b.kind === 'code' ? '<pre><code>' + esc(t) + '</code></pre>' : b.kind === 'heading' ? '<p><b>' + esc(t) + '</b></p>' : '<p>' + esc(t) + '</p>';
  }).join('');
}
// a sentence of the answer; a code block as a block of its own lines, its citation (when it closes the passage) below;
// a prose sentence's citation after it, outside the quotation marks (inside them it read as words of the source)
function answerPart(s) {
  const cls = esc(s.label) + (s.highlight === true ? ' highlight' : s.highlight === false ? ' context' : '');
  const cited = s.citation && s.text.endsWith(s.citation);
  if (s.kind !== 'code') {
    if (!cited) return '<span class="' + cls + '">' + esc(s.text) + '</span>';
    return '<span class="' + cls + '">' + esc(s.text.slice(0, -s.citation.length).trimEnd()) + '</span> <span class="cite">' + esc(s.citation) + '</span>';
  }
  const code = cited ? s.text.slice(0, -s.citation.length).trimEnd() : s.text;
  return '<pre class="code ' + cls + '"><code>' + esc(code) + '</code></pre>' + (cited ? '<span class="cite">' + esc(s.citation) + '</span>' : '');
}
// one label for the glossed sentences (repeated before each, it had made a six-sentence answer twice as long)
function glossBlock(glossed) {
  if (glossed.length === 0) return '';
  return '<div class="gloss"><b>Word-by-word gloss from the dictionary (not a translation):</b>' + glossed.map((s) => '<div class="gloss-line">' + esc(s.gloss) + '</div>').join('') + '</div>';
}
function show(a) {
  $('mode').textContent = '(' + a.mode + (a.grounded ? ', grounded' : ', not fully grounded') + ')';
  // an answer quoting an English and a German passage is labelled with both (one label had called both German)
  const quoted = a.quotedLanguages && a.quotedLanguages.length > 1 ? a.quotedLanguages : [a.quotedLanguages ? a.quotedLanguages[0] : a.language];
  const label = quoted.length > 1 ? '<span id="answer-language" data-lang="' + esc(quoted.join(' ')) + '"><small>quotes</small> ' + quoted.map((l) => lang(l)).join(' ') + '</span>' : lang(quoted[0], 'answer-language');
  $('answer-lang').innerHTML = label + (quoted.length > 1 || a.questionLanguage !== quoted[0] ? ' <small>question: ' + esc(LANG[a.questionLanguage] || a.questionLanguage) + '</small>' : '');
  $('answer').innerHTML = (a.note ? '<div class="note">' + esc(a.note) + '</div>' : '') + (a.sentences.map(answerPart).join(' ') || esc(a.answer || '(no answer found)')) +
    glossBlock(a.sentences.filter((s) => s.gloss));
  $('grounding').innerHTML = a.sentences.map((s, i) => {
    // a run of quotations from one source is one line (a line per sentence said the same thing six times)
    if (s.label === 'quotation') {
      const prev = a.sentences[i - 1];
      if (prev && prev.label === 'quotation' && prev.support.source === s.support.source) return '';
      let n = 1;
      while (a.sentences[i + n] && a.sentences[i + n].label === 'quotation' && a.sentences[i + n].support.source === s.support.source) n++;
      return '<div class="support">❝ ' + (n > 1 ? n + ' sentences quoted' : 'quoted') + ' from source ' + s.support.source + '</div>';
    }
    if (s.label === 'no-claim') return '<div class="support">· no claim to check</div>';
    const sup = s.support ? ' best support (source ' + s.support.source + ', score ' + s.support.score.toFixed(2) + '): “' + esc(s.support.sentence) + '”' : '';
    return '<div class="support">' + (s.supported ? '✔ supported;' : '✘ unsupported' + (s.notes ? ' (' + esc(s.notes.join('; ')) + ')' : '') + ';') + sup + '</div>';
  }).join('');
  $('sources').innerHTML = a.sources.map((s, i) =>
    '<div class="source" id="source-' + s.n + '"><h3>' + s.n + '. ' + esc(s.citation) + ' – ' + esc(s.title) + (s.section && s.section !== s.title ? ' › ' + esc((s.section.startsWith(s.title + ' > ') ? s.section.slice(s.title.length + 3) : s.section).split(' > ').join(' › ')) : '') + ' ' + lang(s.language) + '</h3>' +
    '<div class="scores" title="score: the ranking score after the passage and answer re-ranking; the sources keep their numbers from before the answer re-ranking">score ' + s.score.toFixed(3) + ' · embedding ' + s.denseScore.toFixed(3) + ' · BM25 ' + s.lexicalScore.toFixed(2) + '</div>' +
    '<div class="keywords" id="keywords-' + s.n + '"></div>' +
    '<details><summary>text</summary>' + sourceBody(s) + '</details></div>').join('');
}
function explain(a) {
  const ex = a.explanation || { svg: { sentenceHeatmaps: [], keywords: [] } };
  a.sources.forEach((s, i) => { const k = $('keywords-' + s.n); if (k) k.innerHTML = ex.svg.keywords[i] || ''; });
  $('map').innerHTML = ex.svg.embeddingMap || '<p>(no map)</p>';
  $('heatmaps').innerHTML = ex.svg.sentenceHeatmaps.join('');
}
`;
