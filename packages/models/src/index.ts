export { smallVgg, VGG_CONFIGS, type VggName, type VggOptions, vgg, vggFromBlocks } from './vgg.js';
