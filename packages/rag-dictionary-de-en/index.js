// The dictionary is data: see README.md and COPYRIGHT (Ding, GPL-2.0-or-later).
import dictionary from './dictionary.json' with { type: 'json' };

export default dictionary;
