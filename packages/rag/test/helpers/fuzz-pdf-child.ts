// Child process of the PDF fuzz test: loads seeded mutations of a small PDF with Node's default handling of
// unhandled rejections (no listener of its own) and reports the outcomes to the parent.
import { isCrpError, mulberry32 } from '@crp/common';
import { chunkDocument, extractPdfText, loadDocument } from '../../src/node.js';
import { mutate, PDF, SEEDS } from './fuzz-inputs.js';

const cases = Number(process.argv[2]);
const rand = mulberry32(Number(process.argv[3]));
const report = { valid: 0, errors: {} as Record<string, number>, other: [] as string[] };
for (let i = 0; i < cases; i++) {
  const bytes = mutate(PDF, rand, SEEDS);
  try {
    const doc = await loadDocument('paper.pdf', bytes, { pdf: extractPdfText });
    chunkDocument(doc, { chunkSize: 60, chunkOverlap: 10 });
    report.valid++;
  } catch (error) {
    if (isCrpError(error)) report.errors[error.code] = (report.errors[error.code] ?? 0) + 1;
    else report.other.push(`case ${i}: ${String(error)}`);
  }
  await new Promise((r) => setTimeout(r, 0)); // let pdf.js' internal promises settle inside the run
}
process.send?.(report);
