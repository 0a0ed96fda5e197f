/** The SDK version, sent in the User-Agent and X-Framegate-SDK headers. Keep in step with package.json. */
export const VERSION = "0.1.0";
