import { writeFileAtomic } from '@crp/common/node';
import { type ReportOptions, renderReport } from '../report/report.js';

/** Builds a report (`renderReport`) and writes it atomically to `path`. @throws CrpError `write-failed`. */
export async function writeReport(path: string, options: ReportOptions): Promise<void> {
  await writeFileAtomic(path, await renderReport(options));
}
