declare module "#scalar-bundle" {
  const path: string;
  export default path;
}
