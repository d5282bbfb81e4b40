<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <colorPalette>
        <paletteEntry value="1" color="#1a9641" alpha="255" label="True positive (TP)"/>
        <paletteEntry value="2" color="#fd8d3c" alpha="255" label="False positive (FP)"/>
        <paletteEntry value="3" color="#756bb1" alpha="255" label="False negative (FN)"/>
        <paletteEntry value="4" color="#e0e0e0" alpha="0" label="True negative (TN)"/>
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0"/>
    <huesaturation saturation="0" colorizeOn="0" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
