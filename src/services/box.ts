/** The `vmfile box` commands: build, add, list, remove. */
export { addBox, type AddBoxOptions } from '../box/import.js';
export { buildBox } from '../box/build.js';
export { listBoxes, removeBox } from '../box/store.js';
