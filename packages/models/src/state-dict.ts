import { CrpError } from '@crp/common';
import { PthFile } from './pth.js';
import { SafetensorsFile } from './safetensors.js';
import { sniffFormat } from './weights-format.js';

// StateDict lives beside sniffFormat, so that pth.ts and safetensors.ts need not import this file, which imports them
export type { StateDict } from './weights-format.js';

/**
 * Parses weights in either format, told apart by their bytes: a `.pth`/`.pt` file of `torch.save` ({@link PthFile})
 * or a safetensors file ({@link SafetensorsFile}).
 *
 * @param source names the file in messages
 * @throws CrpError `unsupported-format` for the legacy `.pth` format (the message says how to re-save it) and
 *   for bytes of neither format, and the errors of the two parsers
 */
export function parseStateDict(bytes: Uint8Array, source = 'the weights'): PthFile | SafetensorsFile {
  const format = sniffFormat(bytes);
  if (format === 'safetensors') return SafetensorsFile.parse(bytes, source);
  if (format === 'pth' || format === 'pth-legacy') return PthFile.parse(bytes, source);
  throw new CrpError(
    'unsupported-format',
    `${source} is neither a PyTorch .pth file (a zip archive written by torch.save) nor a safetensors file; valid: torch.save(model.state_dict(), 'state_dict.pth') with PyTorch >= 1.6, or safetensors`,
    { details: { source } },
  );
}
