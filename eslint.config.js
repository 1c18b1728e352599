import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/', '.dev/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      eqeqeq: 'error'
    }
  },
  {
    // The dashboard page runs in the browser.
    files: ['dashboard/**'],
    languageOptions: { globals: { ...globals.browser } }
  },
  {
    files: ['scripts/**', 'bench/**'],
    rules: { 'no-console': 'off' }
  }
)
