import { FALSE_FRIENDS } from '../translate/false-friends.js';
import { QueryTranslator } from '../translate/query-translator.js';

let loading: Promise<QueryTranslator | undefined> | undefined;

/**
 * The English-German translator from the optional package `@crp/rag-dictionary-de-en` (Ding, GPL-2.0-or-later),
 * or `undefined` when it is not installed (then search is monolingual). Known false friends and stem
 * collisions (`FALSE_FRIENDS`) are left out. Loaded once per process.
 */
export function loadDefaultTranslator(): Promise<QueryTranslator | undefined> {
  loading ??= (async () => {
    try {
      const mod = (await import('@crp/rag-dictionary-de-en')) as {
        default: { pairs: string; source: string };
      };
      return QueryTranslator.fromStemPairs(mod.default.pairs, {
        source: mod.default.source,
        exclude: FALSE_FRIENDS,
      });
    } catch {
      return undefined;
    }
  })();
  return loading;
}
