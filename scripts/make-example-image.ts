/**
 * Makes examples/product.png, the reference image the README's image-to-video examples upload.
 * Run once (`node --import tsx scripts/make-example-image.ts`); the PNG is committed, so a fresh
 * clone can run the examples without making anything.
 *
 * The picture has to pass the Files API's checks for kling-2-6, which are Kling's own rules: PNG,
 * at least 300 px on each side, aspect ratio between 1:2.5 and 2.5:1. 640×480 (4:3) is well inside
 * them; a 64-colour palette keeps the file a few KB so the repository stays small.
 */
import { resolve } from "node:path";
import sharp from "sharp";

const WIDTH = 640;
const HEIGHT = 480;
const OUT = resolve(import.meta.dirname, "../examples/product.png");

// A bottle on a round stand against a soft backdrop: a "product" a prompt can turn and light.
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}">
  <defs>
    <linearGradient id="backdrop" x1="0" y1="0" x2="0" y2="1">
      <stop offset="0" stop-color="#e9eef5"/><stop offset="1" stop-color="#b9c4d3"/>
    </linearGradient>
    <linearGradient id="glass" x1="0" y1="0" x2="1" y2="0">
      <stop offset="0" stop-color="#1d5c63"/><stop offset="0.35" stop-color="#3fa7a3"/>
      <stop offset="1" stop-color="#174a50"/>
    </linearGradient>
  </defs>
  <rect width="${WIDTH}" height="${HEIGHT}" fill="url(#backdrop)"/>
  <ellipse cx="320" cy="410" rx="150" ry="26" fill="#8d99aa"/>
  <ellipse cx="320" cy="400" rx="150" ry="26" fill="#d7dde6"/>
  <rect x="292" y="92" width="56" height="40" rx="6" fill="#2b2f36"/>
  <path d="M300 132 h40 v28 q60 26 60 90 v128 q0 22 -22 22 h-116 q-22 0 -22 -22 v-128 q0 -64 60 -90 z" fill="url(#glass)"/>
  <rect x="262" y="250" width="116" height="70" rx="4" fill="#f4f1ea"/>
  <rect x="280" y="268" width="80" height="10" rx="3" fill="#1d5c63"/>
  <rect x="280" y="288" width="56" height="8" rx="3" fill="#8d99aa"/>
  <path d="M262 190 q8 -24 30 -34 v170 q-22 0 -30 -14 z" fill="#ffffff" fill-opacity="0.18"/>
</svg>`;

const info = await sharp(Buffer.from(svg))
  .png({ palette: true, colours: 64, compressionLevel: 9, effort: 10 })
  .toFile(OUT);
console.log(`${OUT}: ${info.width}x${info.height}, ${info.size} bytes`);
