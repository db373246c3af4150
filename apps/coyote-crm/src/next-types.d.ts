// Next.js's ambient types, which its generated next-env.d.ts would bring; that file also imports
// types from .next/, which exist only after a build, and `npm run typecheck` runs before one.
/// <reference types="next" />
/// <reference types="next/image-types/global" />
