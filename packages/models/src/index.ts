export { vgg, vggFromBlocks, smallVgg, VGG_CONFIGS, type VggName, type VggOptions } from './vgg.js';
