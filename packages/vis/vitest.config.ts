import { packageTestConfig } from '../../vitest.shared.js';

// the browser test starts Chromium
export default packageTestConfig({ testTimeout: 60_000 });
