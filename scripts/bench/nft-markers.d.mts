export declare const NFT_MARKER_DIR: string;
export declare function forgetNftMarkers(name: string): void;
