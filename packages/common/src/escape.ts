const HTML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/**
 * Escapes text for HTML and XML (SVG) content and attribute values: `& < > " '`. The one escaper of the
 * toolkit (reports, SVG graphs, the RAG page).
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ENTITIES[c]!);
}

/** Same as {@link escapeHtml}; the name reads better where the output is SVG/XML. */
export const escapeXml = escapeHtml;
