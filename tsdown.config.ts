import { defineConfig } from 'tsdown'

export default defineConfig({
  entry: [
    './index.ts',
    './configure.ts',
    './services/main.ts',
    './providers/lock_provider.ts',
    './src/types.ts',
    './src/stores/main.ts',
    './src/middleware/lock_middleware.ts',
    './src/testing/store_suite.ts',
    './commands/*.ts',
    './stubs/main.ts',
  ],
  outDir: './build',
  clean: true,
  format: 'esm',
  minify: false,
  fixedExtension: false,
  dts: false,
  treeshake: false,
  sourcemap: false,
  target: 'esnext',
  unbundle: true,
})
