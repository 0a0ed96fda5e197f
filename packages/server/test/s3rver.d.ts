/** The parts of s3rver 3.7 (no bundled types) that the tests use. */
declare module "s3rver" {
  interface S3rverOptions {
    address?: string;
    port?: number;
    directory: string;
    silent?: boolean;
    resetOnClose?: boolean;
    configureBuckets?: { name: string; configs?: (string | Buffer)[] }[];
  }
  export default class S3rver {
    constructor(options: S3rverOptions);
    /** Koa's middleware list: composed when the server starts listening. */
    middleware: ((ctx: never, next: () => Promise<void>) => unknown)[];
    store: {
      getResourcePath(bucket: string, key: string | undefined, resource: string): string;
      putObject(object: { bucket: string; key: string }): Promise<{ size: number }>;
      putPart(bucket: string, uploadId: string, partNumber: number, content: unknown): Promise<{ size: number }>;
    };
    run(): Promise<{ address: string; port: number }>;
    close(): Promise<void>;
  }
}
