/** One entry point of a package: the names its README lists and the names its source exports (sorted). */
export interface EntryPointApi {
  entry: string;
  listed: string[];
  exported: string[];
  values: string[];
  types: string[];
}
export function entryPoints(dir: string): { name: string; source: string }[];
export function exportedNames(sources: string[]): { values: string[]; types: string[] }[];
export function listedNames(readme: string): Record<string, string[]>;
export function entryPointApis(dir: string): EntryPointApi[];
export function apiSection(dir: string): string;
export function publishedDependencies(dir: string): string[];
